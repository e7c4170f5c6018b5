// Package hub owns live delivery inside one process: channels, their bounded
// in-memory history, the connections subscribed to them and the fan-out of
// published events to those connections and to held long polls.
//
// Guarantees:
//
//   - Every published event gets a message id (mid): 26 decimal digits, the
//     hub's 10-digit epoch then a 16-digit zero-padded counter. Mids sort as
//     text and are unique for the life of a Hub.
//   - Events are stored per channel and queued to every connection in mid
//     order, across all of the connection's channels (Publish is serialised
//     hub-wide for this: a client resumes from the single highest mid it
//     saw). One event published to several channels that the same
//     connection subscribes to is delivered to it once. Channels added by a
//     later Subscribe replay their own history after what was already sent.
//   - Subscribe and Poll with a since mid register the caller and snapshot the
//     history after since atomically: the replay is followed by the live
//     stream with no gap and no duplicate. When history after since can no
//     longer be served (other epoch, malformed, evicted), the result says
//     Resumed=false so the client resynchronises.
//   - Memory is bounded: history per channel by count, per hub by bytes, per
//     event by its expiry; a connection's queue by Options.QueueSize, past
//     which the connection is closed with CloseSlowConsumer (4008) instead of
//     blocking the publisher.
//   - An event is encoded once per (Format, variant) and the bytes are shared
//     by every recipient.
//
// An idle connection costs a few hundred bytes and no goroutine: its writer
// goroutine runs only while it has something to write. A held Poll creates
// no goroutine. All methods are safe for concurrent use.
package hub
