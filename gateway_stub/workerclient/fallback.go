package workerclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// AgentCreator is anything that creates agents: a *Client, or the seed's AIWorkerClient.
type AgentCreator interface {
	CreateAgent(ctx context.Context, config AgentConfig) (*Agent, error)
}

// Tier says which step of the fallback answered.
type Tier int

const (
	TierPrimary Tier = iota
	TierSecondary
	TierBasic
)

func (t Tier) String() string {
	switch t {
	case TierPrimary:
		return "primary"
	case TierSecondary:
		return "secondary"
	default:
		return "basic"
	}
}

// Fallback is the seed's graceful degradation: the primary worker, then the secondary worker,
// then a basic agent without AI capabilities.
type Fallback struct {
	Primary   AgentCreator
	Secondary AgentCreator
	// Basic builds the last-resort answer. Default: BasicAgent.
	Basic func(AgentConfig) *Agent
}

// CreateAgent is the seed's CreateAgentWithFallback. It moves on only when a worker is
// unavailable (IsUnavailable); a 4xx answer (a bad config) is returned as is, since every
// worker would give it. The error is non-nil only then, or when ctx is done.
func (f *Fallback) CreateAgent(ctx context.Context, config AgentConfig) (*Agent, Tier, error) {
	var errs []error
	for tier, worker := range []AgentCreator{f.Primary, f.Secondary} {
		if worker == nil {
			continue
		}
		agent, err := worker.CreateAgent(ctx, config)
		if err == nil {
			return agent, Tier(tier), nil
		}
		if !IsUnavailable(err) {
			return nil, Tier(tier), err
		}
		if ctx.Err() != nil {
			return nil, Tier(tier), fmt.Errorf("create agent: %w", errors.Join(append(errs, err)...))
		}
		errs = append(errs, err)
	}
	basic := f.Basic
	if basic == nil {
		basic = BasicAgent
	}
	return basic(config), TierBasic, nil
}

// BasicAgent is the default last-resort answer: the requested agent, not stored anywhere, with
// an id prefixed "basic-" so callers can tell it from a worker's.
func BasicAgent(config AgentConfig) *Agent {
	now := time.Now().UTC()
	return &Agent{
		ID:        "basic-" + uuid.NewString(),
		Type:      config.Type,
		Name:      config.Name,
		Config:    config.Config,
		CreatedAt: now,
		UpdatedAt: now,
	}
}
