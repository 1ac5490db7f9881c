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

// Errors of conversation threads (CONTRACT §6). The worker's answer is an *APIError, and
// errors.Is matches it against these by its code, so a caller can both tell the case
// (errors.Is) and read the worker's message and request id (errors.As).
var (
	// ErrThreadBusy (409 thread_busy): another run holds the thread. It says nothing about the
	// worker's health, so the breaker does not count it, and nothing retries it: a second
	// turn sent blindly could answer a question the first turn has not finished asking.
	// Wait for the thread to be idle (GetThread), then send the turn again.
	ErrThreadBusy = errors.New("workerclient: thread busy")
	// ErrThreadNotFound (404 thread_not_found): no such thread, or it was deleted or aged
	// out. A 404 of the thread routes (GetThread, ThreadHistory, DeleteThread, Resume) is
	// this error whatever its code; on Invoke and Stream a 404 is the agent's.
	ErrThreadNotFound = errors.New("workerclient: thread not found")
	// ErrInvalidThreadID (400 invalid_thread_id): a thread id must be 1 to 128 characters of
	// A-Z a-z 0-9 _ . - (ValidThreadID checks it before sending).
	ErrInvalidThreadID = errors.New("workerclient: invalid thread id")
	// ErrThreadExists (409 thread_exists): CreateThread named a thread id already taken.
	ErrThreadExists = errors.New("workerclient: thread exists")
	// ErrNotInterrupted (409 on Resume, other than thread_busy): the thread is not waiting
	// for an answer, so there is nothing to resume.
	ErrNotInterrupted = errors.New("workerclient: thread not interrupted")
)

// threadErrorCodes maps the worker's error codes to the sentinel errors above.
var threadErrorCodes = map[string]error{
	"thread_busy":            ErrThreadBusy,
	"thread_not_found":       ErrThreadNotFound,
	"invalid_thread_id":      ErrInvalidThreadID,
	"thread_exists":          ErrThreadExists,
	"thread_not_interrupted": ErrNotInterrupted,
}

// APIError is an error answer of the worker: {"error": {"code", "message", "request_id"}}.
type APIError struct {
	StatusCode int
	Code       string
	Message    string
	RequestID  string
	// RetryAfter is the worker's Retry-After on 429 and 503, zero otherwise.
	RetryAfter time.Duration
}

// Is matches the sentinel error of e's code (ErrThreadBusy for "thread_busy" and so on).
func (e *APIError) Is(target error) bool {
	sentinel, ok := threadErrorCodes[e.Code]
	return ok && sentinel == target
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
