package relay

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/websocket"
)

const (
	writeWait    = 10 * time.Second
	pingInterval = 25 * time.Second
	maxFrameSize = 1 << 20
)

// Server serves the Hub over WebSocket: IngestHandler for the worker's pushes and
// StreamExecution for browsers.
type Server struct {
	hub      *Hub
	log      *slog.Logger
	upgrader websocket.Upgrader
}

// NewServer serves hub. Browsers must connect from the page's own origin (gorilla's default
// check); the worker, a non-browser client, sends no Origin and is accepted.
func NewServer(hub *Hub, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	return &Server{hub: hub, log: log, upgrader: websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096}}
}

// Hub is the server's hub.
func (s *Server) Hub() *Hub { return s.hub }

// IngestHandler receives a run's frames from the worker (the job's stream_url). Mount it on a
// pattern with an {id} wildcard, e.g. "GET /internal/stream/{id}". It is for the worker only:
// keep it off the public listener or behind the pool's network policy.
func (s *Server) IngestHandler(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id == "" {
		http.Error(w, "no execution id in the path", http.StatusBadRequest)
		return
	}
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.log.Warn("ingest upgrade failed", "execution_id", id, "err", err)
		return // the upgrader has answered
	}
	defer conn.Close()
	conn.SetReadLimit(maxFrameSize)
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) {
				s.log.Debug("ingest ended", "execution_id", id, "err", err)
			}
			return
		}
		frame, err := ParseFrame(data)
		if err != nil {
			s.log.Warn("bad frame from worker", "execution_id", id, "err", err)
			continue
		}
		if frame.TaskID != "" && frame.TaskID != id {
			s.log.Warn("frame for another run", "execution_id", id, "task_id", frame.TaskID)
			continue
		}
		if _, err := s.hub.Publish(id, frame); err != nil {
			_ = conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseTryAgainLater, err.Error()), time.Now().Add(writeWait))
			return
		}
	}
}

// StreamExecution is the seed's handler: a browser connects with ?execution_id=<id> (and
// optionally ?from_seq=<n>) and receives the run's frames, each a JSON text message, from the
// first one to the final one; then the server closes normally.
func (s *Server) StreamExecution(w http.ResponseWriter, r *http.Request) {
	executionID := r.URL.Query().Get("execution_id")
	if executionID == "" {
		http.Error(w, "execution_id is required", http.StatusBadRequest)
		return
	}
	var fromSeq int64
	if v := r.URL.Query().Get("from_seq"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			http.Error(w, "from_seq must be a non-negative integer", http.StatusBadRequest)
			return
		}
		fromSeq = n
	}
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.log.Warn("websocket upgrade failed", "err", err)
		return
	}
	defer conn.Close()

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	// Read (and drop) what the browser sends, so control frames are handled and a closed tab
	// ends the stream.
	go func() {
		defer cancel()
		conn.SetReadLimit(4096)
		for {
			if _, _, err := conn.NextReader(); err != nil {
				return
			}
		}
	}()
	go func() {
		ticker := time.NewTicker(pingInterval)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
				if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
					cancel()
					return
				}
			}
		}
	}()

	err = s.hub.Frames(ctx, executionID, fromSeq, func(f Frame) error {
		_ = conn.SetWriteDeadline(time.Now().Add(writeWait))
		return conn.WriteMessage(websocket.TextMessage, f.Raw)
	})
	code, reason := websocket.CloseNormalClosure, "run ended"
	switch {
	case errors.Is(err, ErrTooManyRuns):
		code, reason = websocket.CloseTryAgainLater, err.Error()
	case err != nil:
		return // the browser left or a write failed: nothing to say
	}
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(writeWait))
	// Give the browser a moment to answer the close before the deferred Close drops the TCP
	// connection, so it sees a clean close rather than an abnormal one.
	select {
	case <-ctx.Done():
	case <-time.After(time.Second):
	}
}
