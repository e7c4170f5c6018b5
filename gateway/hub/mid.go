package hub

import "strconv"

// Mid layout: epochDigits of unix seconds then counterDigits of counter.
const (
	epochDigits   = 10
	counterDigits = 16
	midLen        = epochDigits + counterDigits
)

// ValidMID reports whether s has the shape of a mid: exactly 26 ASCII
// digits. It says nothing about which hub issued it.
func ValidMID(s string) bool {
	if len(s) != midLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// appendMID appends the mid for epoch and counter to dst.
func appendMID(dst []byte, epoch string, seq uint64) []byte {
	dst = append(dst, epoch...)
	var num [20]byte
	n := strconv.AppendUint(num[:0], seq, 10)
	for i := len(n); i < counterDigits; i++ {
		dst = append(dst, '0')
	}
	return append(dst, n...)
}

// formatMID returns the mid for epoch and counter as a string.
func formatMID(epoch string, seq uint64) string {
	var b [midLen + 4]byte
	return string(appendMID(b[:0], epoch, seq))
}

// sinceKind classifies a since value given by a client.
type sinceKind uint8

const (
	sinceNone sinceKind = iota // empty: a fresh client, nothing to replay
	sinceOK                    // this hub's epoch: seq is meaningful
	sinceBad                   // malformed or from another epoch
)

// parseSince splits since into its counter when it was issued by a hub with
// the given epoch.
func parseSince(epoch, since string) (uint64, sinceKind) {
	if since == "" {
		return 0, sinceNone
	}
	if !ValidMID(since) || since[:epochDigits] != epoch {
		return 0, sinceBad
	}
	seq, err := strconv.ParseUint(since[epochDigits:], 10, 64)
	if err != nil {
		return 0, sinceBad
	}
	return seq, sinceOK
}
