package relay_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/agentos/worker/gateway_stub/relay"
)

// A pusher (standing in for the worker) that drops its connection and resends, and browsers
// connected before and after: each browser gets seq 1..n once, in order, then a normal close.
func TestPushToBrowsers(t *testing.T) {
	hub := relay.NewHub(relay.Options{})
	rs := relay.NewServer(hub, nil)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /internal/stream/{id}", rs.IngestHandler)
	mux.HandleFunc("GET /stream", rs.StreamExecution)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ws := "ws" + strings.TrimPrefix(srv.URL, "http")

	early, _, err := websocket.DefaultDialer.Dial(ws+"/stream?execution_id=run1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()

	push := func(seqs ...int) {
		conn, _, err := websocket.DefaultDialer.Dial(ws+"/internal/stream/run1", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for _, seq := range seqs {
			status := "processing"
			switch seq {
			case 1:
				status = "started"
			case 6:
				status = "completed"
			}
			msg := fmt.Sprintf(`{"task_id":"run1","seq":%d,"status":%q,"progress":%d}`, seq, status, seq*10)
			if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
				t.Fatal(err)
			}
		}
		_ = conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	}
	push(1, 2, 3)
	// The worker reconnects only after its first connection failed, so that connection's
	// frames are in before the resend; wait for them, or the two connections race here.
	for deadline := time.Now().Add(5 * time.Second); ; {
		if frames, _ := hub.Snapshot("run1"); len(frames) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first connection's frames never arrived")
		}
		time.Sleep(5 * time.Millisecond)
	}
	push(3, 4, 5, 6) // reconnected: resends from the first frame it was not sure of

	read := func(conn *websocket.Conn) []int64 {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		var seqs []int64
		for {
			var f struct{ Seq int64 }
			if err := conn.ReadJSON(&f); err != nil {
				if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
					t.Fatalf("after %v: %v", seqs, err)
				}
				return seqs
			}
			seqs = append(seqs, f.Seq)
		}
	}
	if got := fmt.Sprint(read(early)); got != "[1 2 3 4 5 6]" {
		t.Fatalf("early browser got %s", got)
	}
	late, _, err := websocket.DefaultDialer.Dial(ws+"/stream?execution_id=run1&from_seq=4", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	if got := fmt.Sprint(read(late)); got != "[4 5 6]" {
		t.Fatalf("late browser from seq 4 got %s", got)
	}
}

func TestStreamExecutionBadRequests(t *testing.T) {
	rs := relay.NewServer(relay.NewHub(relay.Options{}), nil)
	srv := httptest.NewServer(http.HandlerFunc(rs.StreamExecution))
	defer srv.Close()
	for _, query := range []string{"", "?execution_id=x&from_seq=-1", "?execution_id=x&from_seq=abc"} {
		resp, err := http.Get(srv.URL + "/" + query)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %q: %d, want 400", query, resp.StatusCode)
		}
	}
}
