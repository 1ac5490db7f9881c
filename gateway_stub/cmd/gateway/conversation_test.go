package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"github.com/agentos/worker/gateway_stub/workerclient"
)

// toolAgent is the config of an `agent` whose fake model calls the calculator, then the
// clock, then answers: every turn is the same six messages (human, ai calling, tool, ai
// calling, tool, ai).
func toolAgent(tokenDelay string) map[string]any {
	return map[string]any{
		"system_prompt":  "Use your tools.",
		"tools":          []string{"calculator", "current_time"},
		"max_iterations": 5,
		"model": map[string]any{"provider": "fake", "token_delay": tokenDelay, "responses": []any{
			map[string]any{"tool_calls": []any{map[string]any{"name": "calculator", "args": map[string]any{"expression": "6 * 7"}}}},
			map[string]any{"tool_calls": []any{map[string]any{"name": "current_time", "args": map[string]any{}}}},
			"Six times seven is 42, and the clock says it is a fine time to ask about arithmetic.",
		}},
	}
}

var turnTypes = []string{"human", "ai", "tool", "ai", "tool", "ai"}

func TestWriteWorkerError(t *testing.T) {
	cases := []struct {
		name       string
		err        error
		wantStatus int
		wantCode   string
	}{
		{"a busy thread stays 409", &workerclient.APIError{StatusCode: 409, Code: "thread_busy", Message: "m"}, 409, "thread_busy"},
		{"an unknown thread stays 404", fmt.Errorf("%w: %w", workerclient.ErrThreadNotFound,
			&workerclient.APIError{StatusCode: 404, Code: "thread_not_found"}), 404, "thread_not_found"},
		{"a thread id refused before sending", fmt.Errorf("%w %q", workerclient.ErrInvalidThreadID, "a b"), 400, "invalid_thread_id"},
		{"a worker failing is 502", &workerclient.APIError{StatusCode: 503, Code: "overloaded"}, 502, "worker_unavailable"},
		{"no worker at all is 502", errors.New("connection refused"), 502, "worker_unavailable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			writeWorkerError(rec, tc.err)
			var body struct{ Error struct{ Code string } }
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if rec.Code != tc.wantStatus || body.Error.Code != tc.wantCode {
				t.Fatalf("%d %s, want %d %s", rec.Code, body.Error.Code, tc.wantStatus, tc.wantCode)
			}
		})
	}
}

// The conversation endpoints refuse what is wrong before bothering the worker.
func TestConversationBadRequests(t *testing.T) {
	s := startStack(t)
	cases := []struct {
		name, method, path, body string
		wantStatus               int
		wantCode                 string
	}{
		{"turn without agent", "POST", "/api/threads/t-1/turns", `{"input":"hi"}`, 400, "validation_error"},
		{"turn without input", "POST", "/api/threads/t-1/turns", `{"agent_id":"a"}`, 400, "validation_error"},
		{"turn on a malformed thread id", "POST", "/api/threads/a%20b/turns", `{"agent_id":"a","input":"hi"}`, 400, "invalid_thread_id"},
		{"turn that is not JSON", "POST", "/api/threads/t-1/turns", `{nope`, 400, "bad_json"},
		{"resume without an answer", "POST", "/api/threads/t-1/resume", `{"agent_id":"a"}`, 400, "validation_error"},
		{"resume of a malformed thread id", "POST", "/api/threads/a%20b/resume", `{"agent_id":"a","resume":"yes"}`, 400, "invalid_thread_id"},
		{"read a malformed thread id", "GET", "/api/threads/a%20b", ``, 400, "invalid_thread_id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, s.url+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct{ Error struct{ Code string } }
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != tc.wantStatus || body.Error.Code != tc.wantCode {
				t.Fatalf("%d %s, want %d %s", resp.StatusCode, body.Error.Code, tc.wantStatus, tc.wantCode)
			}
		})
	}
}

// Two turns of a conversation through the gateway's API: each turn's frames show the tool
// calls in order, seq without gaps, and the thread holds both turns' messages in order.
func TestGatewayConversation(t *testing.T) {
	s := startStack(t)
	var created struct {
		Agent struct{ ID string } `json:"agent"`
	}
	postJSON(t, s.url+"/api/agents", map[string]any{"type": "agent", "config": toolAgent("0s")}, http.StatusCreated, &created)
	var thread struct {
		ThreadID string `json:"thread_id"`
	}
	postJSON(t, s.url+"/api/threads", map[string]any{"metadata": map[string]any{"test": t.Name()}}, http.StatusCreated, &thread)

	inputs := []string{"What is 6 times 7?", "And again?"}
	for turn, input := range inputs {
		var run struct {
			ID       string `json:"id"`
			Stream   string `json:"stream"`
			ThreadID string `json:"thread_id"`
		}
		postJSON(t, s.url+"/api/threads/"+thread.ThreadID+"/turns",
			map[string]any{"agent_id": created.Agent.ID, "input": input}, http.StatusAccepted, &run)
		if run.ThreadID != thread.ThreadID {
			t.Fatalf("turn on thread %q, want %q", run.ThreadID, thread.ThreadID)
		}
		conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(s.url, "http")+run.Stream, nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
		var tools []string
		var last workerclient.Frame
		for seq := int64(1); ; seq++ {
			var f workerclient.Frame
			if err := conn.ReadJSON(&f); err != nil {
				t.Fatalf("turn %d after %v: %v", turn+1, tools, err)
			}
			if f.Seq != seq {
				t.Fatalf("turn %d: frame seq %d, want %d", turn+1, f.Seq, seq)
			}
			if d, ok := f.ToolData(); ok {
				tools = append(tools, f.Event+" "+d.Tool)
			}
			if last = f; f.Final() {
				break
			}
		}
		conn.Close()
		want := "tool_start calculator,tool_end calculator,tool_start current_time,tool_end current_time"
		if strings.Join(tools, ",") != want || last.Status != "completed" {
			t.Fatalf("turn %d: tool frames %v ending %s; want %s ending completed", turn+1, tools, last.Status, want)
		}
	}

	resp, err := http.Get(s.url + "/api/threads/" + thread.ThreadID)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct{ Thread workerclient.ThreadState }
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("thread: %d, %v", resp.StatusCode, err)
	}
	var types []string
	var humans []string
	for _, m := range got.Thread.Values.Messages {
		types = append(types, m.Type)
		if m.Type == workerclient.MessageHuman {
			humans = append(humans, m.Content.String())
		}
	}
	wantTypes := append(append([]string(nil), turnTypes...), turnTypes...)
	if strings.Join(types, ",") != strings.Join(wantTypes, ",") || strings.Join(humans, "|") != strings.Join(inputs, "|") {
		t.Fatalf("thread messages %v with human %q; want %v with %q", types, humans, wantTypes, inputs)
	}
	if got.Thread.Status != workerclient.ThreadIdle {
		t.Fatalf("thread %s after both turns, want idle", got.Thread.Status)
	}
}

// A headless Chromium holds a conversation on the demo page: the tool calls appear as the
// turn runs, then the thread's messages; a second turn adds its own after them.
func TestDemoConversationInHeadlessChromium(t *testing.T) {
	s := startStack(t)
	browser := headlessBrowser(t, 90*time.Second)
	config, err := json.Marshal(toolAgent("40ms"))
	if err != nil {
		t.Fatal(err)
	}
	text := func(id string) string { return textOf(t, browser, id) }
	if err := chromedp.Do(browser,
		chromedp.Navigate(s.url+"/"),
		chromedp.WaitVisible(chromedp.ID("conv-start")),
		chromedp.SetValue(chromedp.ID("conv-config"), string(config)),
		chromedp.Click(chromedp.ID("conv-start")),
		poll(`!!document.getElementById("conv-status").dataset.thread`, 20*time.Second),
	); err != nil {
		t.Fatalf("start a conversation on the page: %v (#conv-status: %q)", err, text("conv-status"))
	}

	type step struct {
		Event string `json:"event"`
		Tool  string `json:"tool"`
	}
	for turn, want := range []int{6, 12} {
		if err := chromedp.Do(browser,
			chromedp.SetValue(chromedp.ID("turn-input"), fmt.Sprintf("turn %d: what is 6 times 7?", turn+1)),
			chromedp.Click(chromedp.ID("send")),
			// The tool calls show while the turn is still running (the answer streams after
			// them at 40 ms a token)...
			poll(`document.querySelectorAll('#steps li[data-event="tool_end"]').length >= 2 &&
				document.getElementById("turn-status").dataset.status === "running"`, 30*time.Second),
			// ...then the turn ends and the page shows the thread's messages.
			poll(`document.getElementById("turn-status").dataset.status === "completed" &&
				document.getElementById("conversation").dataset.messages === "`+fmt.Sprint(want)+`"`, 30*time.Second),
		); err != nil {
			t.Fatalf("turn %d on the page: %v (#turn-status: %q, #steps: %q, #conversation: %q)",
				turn+1, err, text("turn-status"), text("steps"), text("conversation"))
		}
		steps, err := chromedp.Run(browser, chromedp.Evaluate[[]step](
			`Array.from(document.querySelectorAll("#steps li")).filter(li => li.dataset.event.startsWith("tool_")).map(li => ({event: li.dataset.event, tool: li.dataset.tool}))`))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := json.Marshal(steps)
		wantSteps := `[{"event":"tool_start","tool":"calculator"},{"event":"tool_end","tool":"calculator"},` +
			`{"event":"tool_start","tool":"current_time"},{"event":"tool_end","tool":"current_time"}]`
		if string(got) != wantSteps {
			t.Fatalf("turn %d: steps on the page %s, want %s", turn+1, got, wantSteps)
		}
	}
	types, err := chromedp.Run(browser, chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll("#conversation .msg")).map(m => m.dataset.type)`))
	if err != nil {
		t.Fatal(err)
	}
	wantTypes := append(append([]string(nil), turnTypes...), turnTypes...)
	if strings.Join(types, ",") != strings.Join(wantTypes, ",") {
		t.Fatalf("messages on the page %v, want %v", types, wantTypes)
	}
	if !strings.Contains(text("conversation"), "turn 2: what is 6 times 7?") {
		t.Fatalf("the second turn's question is not on the page: %q", text("conversation"))
	}
}
