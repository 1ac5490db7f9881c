// Package relay is the seed's StreamExecution: browsers connect by WebSocket with an
// execution_id and receive the run's frames (CONTRACT §3) live.
//
// Frames reach the Hub two ways. Push, the seed's pattern: a job's stream_url points at
// IngestHandler, and the worker connects to it and sends the frames, reconnecting and resending
// from the first frame it has not delivered. Pull: Follow reads the worker's
// /v1/tasks/{id}/events. Either way the Hub keeps each run's frames in seq order, dropping the
// ones it has already seen, so a browser that connects late gets the whole run from seq 1, and a
// slow browser only slows itself: readers walk the run's one bounded buffer at their own pace
// rather than each having a queue.
package relay
