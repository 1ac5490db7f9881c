package workerclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Message types of a thread's messages: LangChain's JSON form.
const (
	MessageHuman  = "human"
	MessageAI     = "ai"
	MessageTool   = "tool"
	MessageSystem = "system"
)

// Message is a LangChain message in its JSON form, as a thread's values hold it:
// {"type": "human"|"ai"|"tool"|"system", "content", ...}. Fields this type does not name
// (additional_kwargs, response_metadata, usage_metadata...) are kept in Raw.
type Message struct {
	// Type is one of MessageHuman, MessageAI, MessageTool, MessageSystem.
	Type    string  `json:"type"`
	Content Content `json:"content"`
	// ID is LangChain's message id, when set.
	ID string `json:"id,omitempty"`
	// Name is the tool's name on a tool message, or the speaker's name.
	Name string `json:"name,omitempty"`
	// ToolCalls are the tools an AI message asked for.
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	// ToolCallID is, on a tool message, the call it answers.
	ToolCallID string `json:"tool_call_id,omitempty"`
	// Status is, on a tool message, "success" or "error".
	Status string `json:"status,omitempty"`
	// Raw is the message as the worker sent it (set when decoded, not encoded).
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the named fields and keeps the whole message in Raw.
func (m *Message) UnmarshalJSON(data []byte) error {
	type plain Message // without this method, so no recursion
	var p plain
	if err := json.Unmarshal(data, &p); err != nil {
		return fmt.Errorf("message: %w", err)
	}
	*m = Message(p)
	m.Raw = append(json.RawMessage(nil), data...)
	return nil
}

// ToolCall is one tool an AI message asked for.
type ToolCall struct {
	Name string `json:"name"`
	// Args are the tool's arguments, a JSON object.
	Args json.RawMessage `json:"args,omitempty"`
	ID   string          `json:"id,omitempty"`
}

// Content is a message's content: a string, or a list of content blocks ({"type": "text",
// "text"}, images, tool use...). Exactly one of Text and Blocks is set after decoding, and it
// encodes back to the same form.
type Content struct {
	// Text is the content when it is a string.
	Text string
	// Blocks are the content's blocks when it is a list, each as the worker sent it.
	Blocks []json.RawMessage
}

// TextContent is content that is a plain string.
func TextContent(text string) Content { return Content{Text: text} }

// String is the content's text: Text, or the text of its text blocks joined.
func (c Content) String() string {
	if c.Blocks == nil {
		return c.Text
	}
	var b strings.Builder
	for _, raw := range c.Blocks {
		var block struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		if json.Unmarshal(raw, &block) == nil && block.Type == "text" {
			b.WriteString(block.Text)
		}
	}
	return b.String()
}

// MarshalJSON writes a string, or the list of blocks.
func (c Content) MarshalJSON() ([]byte, error) {
	if c.Blocks != nil {
		return json.Marshal(c.Blocks)
	}
	return json.Marshal(c.Text)
}

// UnmarshalJSON reads a string or a list of blocks; null is empty text.
func (c *Content) UnmarshalJSON(data []byte) error {
	*c = Content{}
	trimmed := bytes.TrimSpace(data)
	switch {
	case bytes.Equal(trimmed, []byte("null")):
		return nil
	case len(trimmed) > 0 && trimmed[0] == '[':
		c.Blocks = []json.RawMessage{}
		if err := json.Unmarshal(trimmed, &c.Blocks); err != nil {
			return fmt.Errorf("content blocks: %w", err)
		}
		return nil
	default:
		if err := json.Unmarshal(trimmed, &c.Text); err != nil {
			return fmt.Errorf("content: want a string or a list of blocks: %w", err)
		}
		return nil
	}
}
