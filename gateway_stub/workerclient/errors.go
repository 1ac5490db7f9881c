package workerclient

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// ErrBreakerOpen is returned without calling the worker while its circuit breaker is open (or
// half-open with its trial calls taken). Match it with errors.Is.
var ErrBreakerOpen = errors.New("workerclient: circuit breaker open")

// APIError is an error answer of the worker: {"error": {"code", "message", "request_id"}}.
type APIError struct {
	StatusCode int
	Code       string
	Message    string
	RequestID  string
	// RetryAfter is the worker's Retry-After on 429 and 503, zero otherwise.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	return fmt.Sprintf("worker answered %d %s: %s (request %s)", e.StatusCode, e.Code, e.Message, e.RequestID)
}

// Temporary reports whether the same call may succeed later (overload, open breaker, deadline).
func (e *APIError) Temporary() bool {
	switch e.StatusCode {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// retryAfter parses a Retry-After header given in seconds (the worker's form); HTTP dates are
// ignored.
func retryAfter(h http.Header) time.Duration {
	secs, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || secs < 0 {
		return 0
	}
	return time.Duration(secs) * time.Second
}
