package callbacks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/agentos/worker/gateway_stub/callbacks"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func serve(t *testing.T) (*callbacks.Receiver, string) {
	t.Helper()
	rec, err := callbacks.NewReceiver(callbacks.Options{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /execution-complete/{id}", rec)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return rec, srv.URL
}

// post sends body to the receiver signed with key for msgID at ts; sign=false sends no signature.
func post(t *testing.T, url, key, msgID string, ts time.Time, body string, sign bool) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("webhook-id", msgID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	if sign {
		wh, err := standardwebhooks.NewWebhook(key)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := wh.Sign(msgID, ts, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("webhook-signature", sig)
	}
	req.Header.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func result(id string) string {
	return fmt.Sprintf(`{"task_id":%q,"status":"completed","result":"ok","metadata":{"execution_time":"2.5s","attempts":1,"worker_id":"w1"}}`, id)
}

func TestVerification(t *testing.T) {
	other := "whsec_" + "c2Vjb25kLXNlY3JldC1vZi10aGlydHktdHdvLWJ5dGVz"
	now := time.Now()
	cases := []struct {
		name     string
		key      string
		ts       time.Time
		path     string
		body     string
		sign     bool
		tamper   bool
		want     int
		stored   uint64
		rejected uint64
	}{
		{"valid", secret, now, "t1", result("t1"), true, false, http.StatusNoContent, 1, 0},
		{"other secret", other, now, "t1", result("t1"), true, false, http.StatusUnauthorized, 0, 1},
		{"tampered body", secret, now, "t1", result("t1"), true, true, http.StatusUnauthorized, 0, 1},
		{"no signature", secret, now, "t1", result("t1"), false, false, http.StatusUnauthorized, 0, 1},
		{"stale timestamp", secret, now.Add(-10 * time.Minute), "t1", result("t1"), true, false, http.StatusUnauthorized, 0, 1},
		{"timestamp from the future", secret, now.Add(10 * time.Minute), "t1", result("t1"), true, false, http.StatusUnauthorized, 0, 1},
		{"signed but not a result", secret, now, "t1", `{"hello":1}`, true, false, http.StatusBadRequest, 0, 1},
		{"path and body disagree", secret, now, "t2", result("t1"), true, false, http.StatusBadRequest, 0, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec, base := serve(t)
			body := tc.body
			url := base + "/execution-complete/" + tc.path
			if tc.tamper {
				// Sign the original, send another body under that signature.
				wh, _ := standardwebhooks.NewWebhook(tc.key)
				sig, _ := wh.Sign("msg_1", tc.ts, []byte(body))
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewBufferString(result("t1")+" "))
				req.Header.Set("webhook-id", "msg_1")
				req.Header.Set("webhook-timestamp", strconv.FormatInt(tc.ts.Unix(), 10))
				req.Header.Set("webhook-signature", sig)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tc.want {
					t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
				}
			} else if got := post(t, url, tc.key, "msg_1", tc.ts, body, tc.sign); got != tc.want {
				t.Fatalf("status %d, want %d", got, tc.want)
			}
			st := rec.Stats()
			if st.Stored != tc.stored || st.Rejected != tc.rejected {
				t.Fatalf("stats %+v, want stored %d rejected %d", st, tc.stored, tc.rejected)
			}
		})
	}
}

func TestDeduplication(t *testing.T) {
	rec, base := serve(t)
	now := time.Now()
	url := base + "/execution-complete/t1"
	steps := []struct {
		name  string
		msgID string
		want  int
	}{
		{"first delivery", "msg_a", http.StatusNoContent},
		{"retry with the same webhook-id", "msg_a", http.StatusOK},
		{"again", "msg_a", http.StatusOK},
		{"the stored result re-delivered under a new id", "msg_b", http.StatusOK},
	}
	for _, s := range steps {
		if got := post(t, url, secret, s.msgID, now, result("t1"), true); got != s.want {
			t.Fatalf("%s: status %d, want %d", s.name, got, s.want)
		}
	}
	st := rec.Stats()
	if st.Stored != 1 || st.Duplicates != 2 || st.Replays != 1 || st.Verified != 4 {
		t.Fatalf("stats %+v", st)
	}
	d, ok := rec.Result("t1")
	if !ok || d.WebhookID != "msg_a" || d.Metadata.ExecutionTime != "2.5s" || d.TraceParent == "" {
		t.Fatalf("stored %+v", d)
	}
}

func TestWait(t *testing.T) {
	rec, base := serve(t)
	got := make(chan callbacks.Delivery, 1)
	go func() {
		d, err := rec.Wait(context.Background(), "t9")
		if err != nil {
			t.Error(err)
		}
		got <- d
	}()
	time.Sleep(20 * time.Millisecond) // let Wait register first; it must also work if it did not
	post(t, base+"/execution-complete/t9", secret, "msg_9", time.Now(), result("t9"), true)
	select {
	case d := <-got:
		if d.TaskID != "t9" || d.Status != callbacks.StatusCompleted {
			t.Fatalf("delivery %+v", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return")
	}
	// Already there: returns at once. Never coming: returns ctx's error.
	if _, err := rec.Wait(context.Background(), "t9"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := rec.Wait(ctx, "never"); err == nil {
		t.Fatal("Wait for a result that never comes returned no error")
	}
}

func TestOptions(t *testing.T) {
	if _, err := callbacks.NewReceiver(callbacks.Options{}); err == nil {
		t.Fatal("no secret and no AllowUnsigned: want an error")
	}
	if _, err := callbacks.NewReceiver(callbacks.Options{Secret: "whsec_!!notbase64"}); err == nil {
		t.Fatal("bad secret: want an error")
	}
}

// The callbacks of CONTRACT §6 and §7 decode: an interrupted run with its question, usage and
// the thread; a callback without them decodes as before.
func TestResultsOfThreadsAndUsage(t *testing.T) {
	cases := []struct {
		name  string
		body  string
		check func(callbacks.Delivery) bool
	}{
		{"interrupted with its question",
			`{"task_id":"t1","status":"interrupted","interrupt":{"question":"approve?"},"metadata":{"execution_time":"1s","attempts":1,"worker_id":"w","thread_id":"th-1"}}`,
			func(d callbacks.Delivery) bool {
				return d.Status == callbacks.StatusInterrupted && string(d.Interrupt) == `{"question":"approve?"}` && d.Metadata.ThreadID == "th-1"
			}},
		{"completed with usage",
			`{"task_id":"t2","status":"completed","result":"42","metadata":{"execution_time":"1s","attempts":1,"worker_id":"w","usage":{"input_tokens":7,"output_tokens":3,"total_tokens":10,"cost_usd":null},"time_to_first_token":"80ms"}}`,
			func(d callbacks.Delivery) bool {
				u := d.Metadata.Usage
				return u != nil && u.TotalTokens == 10 && u.CostUSD == nil && d.Metadata.TimeToFirstToken == "80ms" && d.Interrupt == nil
			}},
		{"the seed's shape", result("t3"),
			func(d callbacks.Delivery) bool {
				return d.Metadata.Usage == nil && d.Metadata.ThreadID == "" && string(d.Result.Result) == `"ok"`
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec, url := serve(t)
			var head struct {
				TaskID string `json:"task_id"`
			}
			if err := json.Unmarshal([]byte(tc.body), &head); err != nil {
				t.Fatal(err)
			}
			if code := post(t, url+"/execution-complete/"+head.TaskID, secret, "msg_"+head.TaskID, time.Now(), tc.body, true); code != http.StatusNoContent {
				t.Fatalf("answered %d", code)
			}
			d, ok := rec.Result(head.TaskID)
			if !ok || !tc.check(d) {
				t.Fatalf("delivery %+v", d)
			}
		})
	}
}
