package relay

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/gorilla/websocket"
)

// Follow is the pull alternative to the worker's push: it reads run id's frames from the
// worker's GET /v1/tasks/{id}/events (WebSocket) into the hub, reconnecting with exponential
// backoff from the first frame it lacks, until the final frame or ctx's end (bound ctx: a run
// that never starts is retried until then). workerURL is the
// worker's http(s) base URL; header carries e.g. the bearer token.
func Follow(ctx context.Context, hub *Hub, workerURL, id string, header http.Header) error {
	base, err := url.Parse(strings.TrimRight(workerURL, "/"))
	if err != nil {
		return fmt.Errorf("follow %s: bad worker URL: %w", id, err)
	}
	switch base.Scheme {
	case "http":
		base.Scheme = "ws"
	case "https":
		base.Scheme = "wss"
	default:
		return fmt.Errorf("follow %s: worker URL must be http(s), got %q", id, workerURL)
	}
	policy := backoff.NewExponentialBackOff()
	policy.InitialInterval = 50 * time.Millisecond
	policy.MaxInterval = 2 * time.Second
	_, err = backoff.Retry(ctx, func() (struct{}, error) {
		done, err := followOnce(ctx, hub, base, id, header)
		if done {
			return struct{}{}, nil
		}
		if err == nil {
			err = errors.New("stream ended before the final frame")
		}
		return struct{}{}, err
	}, backoff.WithBackOff(policy), backoff.WithMaxElapsedTime(0))
	if err != nil {
		return fmt.Errorf("follow %s: %w", id, err)
	}
	return nil
}

func followOnce(ctx context.Context, hub *Hub, base *url.URL, id string, header http.Header) (bool, error) {
	frames, _ := hub.Snapshot(id)
	var from int64 = 1
	if len(frames) > 0 {
		from = frames[len(frames)-1].Seq + 1
	}
	u := *base
	u.Path += "/v1/tasks/" + url.PathEscape(id) + "/events"
	u.RawQuery = "from_seq=" + strconv.FormatInt(from, 10)
	conn, resp, err := websocket.DefaultDialer.DialContext(ctx, u.String(), header)
	if err != nil {
		// 404 is retried: a job just published is unknown until a worker takes it.
		if resp != nil && resp.StatusCode >= 400 && resp.StatusCode < 500 &&
			resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusNotFound {
			return false, backoff.Permanent(fmt.Errorf("dial %s: %s: %w", u.Redacted(), resp.Status, err))
		}
		return false, fmt.Errorf("dial %s: %w", u.Redacted(), err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	conn.SetReadLimit(maxFrameSize)
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return false, fmt.Errorf("read: %w", err)
		}
		frame, err := ParseFrame(data)
		if err != nil {
			continue
		}
		if _, err := hub.Publish(id, frame); err != nil {
			return false, backoff.Permanent(err)
		}
		if frame.Terminal() {
			return true, nil
		}
	}
}
