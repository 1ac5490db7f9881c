package workerclient_test

import (
	"context"
	"testing"
	"time"
)

// A job's record as the worker answers it, its story included (nulls as Python writes them).
const taskWithStory = `{"id":"t-1","status":"completed","agent_id":"a-1","attempts":2,
 "worker_id":"w-two","created_at":"2026-01-01T00:00:00Z","started_at":"2026-01-01T00:00:02Z",
 "finished_at":"2026-01-01T00:00:05Z","result":"done","error":null,"execution_time":"3s",
 "cancel_requested":false,"thread_id":null,"interrupt":null,"stream_refused":null,
 "history":[
  {"event":"queued","at":"2026-01-01T00:00:00Z","attempt":null,"worker_id":null,"delivery":null,"reason":null,"detail":null},
  {"event":"running","at":"2026-01-01T00:00:00.1Z","attempt":1,"worker_id":"w-one","delivery":null,"reason":null,"detail":null},
  {"event":"redelivered","at":"2026-01-01T00:00:02Z","attempt":null,"worker_id":"w-two","delivery":2,"reason":"worker_lost","detail":"worker w-one stopped answering"},
  {"event":"running","at":"2026-01-01T00:00:02Z","attempt":2,"worker_id":"w-two","delivery":null,"reason":null,"detail":null},
  {"event":"completed","at":"2026-01-01T00:00:05Z","attempt":2,"worker_id":"w-two","delivery":null,"reason":null,"detail":null}],
 "history_dropped":0,
 "callback":{"attempts":3,"last_status_code":200,"last_error":null,
  "last_attempt_at":"2026-01-01T00:00:07Z","next_attempt_at":null,
  "delivered_at":"2026-01-01T00:00:07Z","dead_lettered_at":null,"dead_letter_reason":null,
  "tries":[
   {"attempt":1,"at":"2026-01-01T00:00:05Z","status_code":503,"error":null},
   {"attempt":2,"at":"2026-01-01T00:00:05.5Z","status_code":null,"error":"ClientConnectorError: refused"},
   {"attempt":3,"at":"2026-01-01T00:00:07Z","status_code":200,"error":null}],
  "tries_dropped":0}}`

// A worker from before the story: no history, no callback.
const taskWithoutStory = `{"id":"t-1","status":"queued","agent_id":"a-1","attempts":0,
 "worker_id":null,"created_at":"2026-01-01T00:00:00Z","started_at":null,"finished_at":null,
 "cancel_requested":false}`

func TestTaskStory(t *testing.T) {
	cases := []struct {
		name, body string
		events     []string
		workers    []string
		reasons    []string
		statuses   []int
		delivered  bool
	}{
		{
			name:      "killed worker, receiver 503 then down then 200",
			body:      taskWithStory,
			events:    []string{"queued", "running", "redelivered", "running", "completed"},
			workers:   []string{"", "w-one", "w-two", "w-two", "w-two"},
			reasons:   []string{"", "", "worker_lost", "", ""},
			statuses:  []int{503, 0, 200},
			delivered: true,
		},
		{name: "an older worker", body: taskWithoutStory},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, c := newFakeWorker(t, map[string]answer{"GET /v1/tasks/t-1": {200, tc.body}})
			task, err := c.GetTask(context.Background(), "t-1")
			if err != nil {
				t.Fatal(err)
			}
			if len(task.History) != len(tc.events) {
				t.Fatalf("history %+v, want events %v", task.History, tc.events)
			}
			for i, e := range task.History {
				if e.Event != tc.events[i] || e.WorkerID != tc.workers[i] || e.Reason != tc.reasons[i] {
					t.Errorf("event %d: %+v, want %s on %q (%q)", i, e, tc.events[i], tc.workers[i], tc.reasons[i])
				}
			}
			if tc.statuses == nil {
				if task.Callback != nil {
					t.Fatalf("callback %+v, want none", task.Callback)
				}
				return
			}
			cb := task.Callback
			if cb == nil || cb.Attempts != len(tc.statuses) || len(cb.Tries) != len(tc.statuses) {
				t.Fatalf("callback %+v, want %d attempts", cb, len(tc.statuses))
			}
			for i, try := range cb.Tries {
				if try.StatusCode != tc.statuses[i] || try.Attempt != i+1 {
					t.Errorf("try %d: %+v, want status %d", i, try, tc.statuses[i])
				}
			}
			if (cb.DeliveredAt != nil) != tc.delivered || cb.NextAttemptAt != nil {
				t.Errorf("callback %+v: delivered %v, no next attempt", cb, tc.delivered)
			}
			if tc.delivered && !cb.DeliveredAt.Equal(time.Date(2026, 1, 1, 0, 0, 7, 0, time.UTC)) {
				t.Errorf("delivered at %v", cb.DeliveredAt)
			}
		})
	}
}
