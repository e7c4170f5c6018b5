package fake

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Faults are service-wide failures, applied to every send after its request
// was read and before any per-token Behavior: they model an outage or a
// misbehaving front end rather than an answer about one device. The zero
// value injects nothing.
type Faults struct {
	// Unavailable answers every send with 503 (APNs ServiceUnavailable,
	// FCM UNAVAILABLE): the service is reachable but down. For a service
	// that refuses connections, use APNs.Down.
	Unavailable bool
	// RetryAfter, when positive, is sent as Retry-After with Unavailable
	// answers.
	RetryAfter time.Duration
	// FailEvery answers every FailEvery-th send with 500 (2: every other
	// one). 0 disables it.
	FailEvery int
	// ResetEvery tears down every ResetEvery-th send mid-stream instead of
	// answering it: HTTP/2 (APNs) resets the stream, HTTP/1.1 (FCM) writes
	// the status line and half a body, then drops the connection. The
	// client cannot know whether the push went out. 0 disables it.
	ResetEvery int
}

// Validate reports a negative count.
func (f Faults) Validate() error {
	switch {
	case f.FailEvery < 0:
		return errors.New("fake: Faults.FailEvery must not be negative")
	case f.ResetEvery < 0:
		return errors.New("fake: Faults.ResetEvery must not be negative")
	case f.RetryAfter < 0:
		return errors.New("fake: Faults.RetryAfter must not be negative")
	}
	return nil
}

// faultKind is what faultState decided for one send.
type faultKind int

const (
	faultNone faultKind = iota
	faultUnavailable
	faultInternal
	faultReset
)

// faultState holds a fake's current Faults and counts sends for the
// "every n-th" faults.
type faultState struct {
	mu       sync.Mutex
	f        Faults
	n        uint64
	injected atomic.Int64
}

func (s *faultState) set(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.f, s.n = f, 0
	return nil
}

// next decides the fault for one send.
func (s *faultState) next() (faultKind, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.f
	if f == (Faults{}) {
		return faultNone, 0
	}
	s.n++
	k := faultNone
	switch {
	case f.Unavailable:
		k = faultUnavailable
	case f.ResetEvery > 0 && s.n%uint64(f.ResetEvery) == 0:
		k = faultReset
	case f.FailEvery > 0 && s.n%uint64(f.FailEvery) == 0:
		k = faultInternal
	}
	if k != faultNone {
		s.injected.Add(1)
	}
	return k, f.RetryAfter
}

// SetFaults replaces the service-wide faults; the zero Faults ends them.
func (f *APNs) SetFaults(fl Faults) error { return f.faults.set(fl) }

// FaultsInjected is how many sends a Faults setting has failed so far.
func (f *APNs) FaultsInjected() int64 { return f.faults.injected.Load() }

// SetFaults replaces the service-wide faults; the zero Faults ends them.
func (f *FCM) SetFaults(fl Faults) error { return f.faults.set(fl) }

// FaultsInjected is how many sends a Faults setting has failed so far.
func (f *FCM) FaultsInjected() int64 { return f.faults.injected.Load() }

// apnsFault answers rec with the current fault, if any, and reports
// whether it did.
func (f *APNs) apnsFault(w http.ResponseWriter, rec *APNsRequest) bool {
	k, retry := f.faults.next()
	switch k {
	case faultReset:
		f.finish(rec) // Status 0: no answer was given
		// net/http's HTTP/2 server resets the stream on this panic and
		// does not log it.
		panic(http.ErrAbortHandler)
	case faultUnavailable:
		rec.Status, rec.Reason = http.StatusServiceUnavailable, APNsServiceUnavailable
		if retry > 0 {
			w.Header().Set("Retry-After", strconv.FormatInt(int64((retry+time.Second-1)/time.Second), 10))
		}
	case faultInternal:
		rec.Status, rec.Reason = http.StatusInternalServerError, APNsInternalServerError
	default:
		return false
	}
	f.finish(rec)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rec.Status)
	_, _ = fmt.Fprintf(w, `{"reason":%q}`, rec.Reason)
	return true
}

// fcmFault answers req with the current fault, if any, and reports
// whether it did.
func (f *FCM) fcmFault(w http.ResponseWriter, req *FCMRequest) bool {
	k, retry := f.faults.next()
	switch k {
	case faultReset:
		f.record(req) // Status 0: no complete answer was given
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"name":"projects/`))
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		panic(http.ErrAbortHandler)
	case faultUnavailable:
		req.Status = http.StatusServiceUnavailable
		f.record(req)
		fcmWriteError(w, req.Status, "UNAVAILABLE", FCMUnavailable, fcmDefaultMessage(FCMUnavailable, req.Status), "", retry)
	case faultInternal:
		req.Status = http.StatusInternalServerError
		f.record(req)
		fcmWriteError(w, req.Status, "INTERNAL", FCMInternal, fcmDefaultMessage(FCMInternal, req.Status), "", 0)
	default:
		return false
	}
	return true
}

// RotateCertificate makes the fake serve a new TLS certificate (new key,
// same CA, as when Apple renews its server certificate): open connections
// are closed and clients must handshake again. Clients that trust
// Certificate() keep working.
func (f *APNs) RotateCertificate() error {
	cert, err := f.ca.issue()
	if err != nil {
		return err
	}
	f.life.Lock()
	defer f.life.Unlock()
	if f.closed {
		return errors.New("fake: APNs is closed")
	}
	f.tlsConf.Certificates = []tls.Certificate{cert}
	if f.srv == nil {
		return nil // down: Up serves the new certificate
	}
	_ = f.srv.Close()
	f.srv = nil
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("fake: listen again on %s: %w", f.addr, err)
	}
	f.serve(ln)
	return nil
}
