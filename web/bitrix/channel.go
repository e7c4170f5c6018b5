package bitrix

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// Channel id errors; each is wrapped with the offending element's position.
var (
	// ErrWrongChannel is the class of every CHANNEL_ID parse failure
	// (Bitrix code 4010 "Wrong Channel Id").
	ErrWrongChannel = errors.New("bitrix: wrong channel id")
	// ErrBadSignature means a channel's signature does not match.
	ErrBadSignature = fmt.Errorf("%w: bad signature", ErrWrongChannel)
)

// Hub channel name prefixes (see the package doc).
const (
	privPrefix = "bx:"
	pubPrefix  = "bxp:"
	userPrefix = "user:"
)

// Channel is one parsed element of a CHANNEL_ID list.
type Channel struct {
	// ID is the 32-hex private or shared channel id ("" for a bare public
	// element, see Public).
	ID string
	// PublicID is the 32-hex public id: the alias given with "priv:pub",
	// or the channel itself for a public element.
	PublicID string
	// Public is true for an element signed as a public channel
	// ("pub.sig" over "public:pub").
	Public bool
}

// HubChannels appends the hub channels a subscription to ch covers.
func (ch Channel) HubChannels(dst []string) []string {
	if ch.ID != "" {
		dst = append(dst, privPrefix+ch.ID)
	}
	if ch.PublicID != "" {
		dst = append(dst, pubPrefix+ch.PublicID)
	}
	return dst
}

// Signer computes and checks Bitrix HMAC signatures
// (CPullChannel::GetSignature): lowercase hex of HMAC_algo(key, value).
// The zero key disables signatures, as in the PHP module. Safe for
// concurrent use.
type Signer struct {
	key     []byte
	newHash func() hash.Hash
	hexLen  int
	ids     cipher.Block // derives and recognises config-endpoint channel ids
}

// NewSigner returns a Signer for key and algo ("sha1" or "sha256"; "" is
// sha1).
func NewSigner(key, algo string) (*Signer, error) {
	s := &Signer{key: []byte(key)}
	switch algo {
	case "", "sha1":
		s.newHash, s.hexLen = sha1.New, 40
	case "sha256":
		s.newHash, s.hexLen = sha256.New, 64
	default:
		return nil, fmt.Errorf("%w: SignatureAlgo: %q is not sha1 or sha256", ErrInvalidOptions, algo)
	}
	// The id cipher key is derived, never the signature key itself.
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("pushpull bitrix channel ids"))
	blk, err := aes.NewCipher(m.Sum(nil)[:16])
	if err != nil {
		return nil, err
	}
	s.ids = blk
	return s, nil
}

// HasKey reports whether signatures are in force.
func (s *Signer) HasKey() bool { return len(s.key) > 0 }

// SigLen is the hex length of a signature (40 for sha1, 64 for sha256).
func (s *Signer) SigLen() int { return s.hexLen }

// Raw returns the raw HMAC of value.
func (s *Signer) Raw(value []byte) []byte {
	m := hmac.New(s.newHash, s.key)
	m.Write(value)
	return m.Sum(nil)
}

// Sign returns the hex signature of value.
func (s *Signer) Sign(value string) string { return hex.EncodeToString(s.Raw([]byte(value))) }

// Verify reports whether sig is the hex signature of value, in constant
// time.
func (s *Signer) Verify(value, sig string) bool {
	want := s.Sign(value)
	return len(sig) == len(want) && subtle.ConstantTimeCompare([]byte(strings.ToLower(sig)), []byte(want)) == 1
}

// VerifyRaw reports whether sig is the raw signature of value.
func (s *Signer) VerifyRaw(value []byte, sig []byte) bool {
	return hmac.Equal(s.Raw(value), sig)
}

// SignChannel is CPullChannel::SignChannel: "id.sig", or id without a key.
func (s *Signer) SignChannel(id string) string {
	if !s.HasKey() {
		return id
	}
	return id + "." + s.Sign(id)
}

// SignPublicChannel is CPullChannel::SignPublicChannel: "pub.sig" over
// "public:pub", or "" without a key.
func (s *Signer) SignPublicChannel(pub string) string {
	if !s.HasKey() {
		return ""
	}
	return pub + "." + s.Sign("public:"+pub)
}

// isHex32 reports whether v is a 32-character lowercase hex id.
func isHex32(v string) bool {
	if len(v) != 32 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ParseChannelList parses a CHANNEL_ID list ("priv:pub.sig/shared.sig",
// "/"-separated). Each element is "id", "id.sig" or "priv:pub.sig"; with a
// key the signature is required. An element whose signature is over
// "public:id" is a public channel. One bad element rejects the whole list
// (every error wraps ErrWrongChannel); an empty list is an error; at most
// max elements are accepted.
func (s *Signer) ParseChannelList(list string, max int) ([]Channel, error) {
	return s.parseList(list, max, false)
}

// ParsePublishList parses the CHANNEL_ID list of a trusted publish: as
// ParseChannelList, except that bare ids need no signature (the PHP module
// sends raw ids; the publish listener is trusted). Signed elements are
// still verified, and "priv:pub" always needs its signature.
func (s *Signer) ParsePublishList(list string, max int) ([]Channel, error) {
	return s.parseList(list, max, true)
}

func (s *Signer) parseList(list string, max int, trusted bool) ([]Channel, error) {
	if list == "" {
		return nil, fmt.Errorf("%w: empty list", ErrWrongChannel)
	}
	n := strings.Count(list, "/") + 1
	if max > 0 && n > max {
		return nil, fmt.Errorf("%w: %d channels, at most %d", ErrWrongChannel, n, max)
	}
	out := make([]Channel, 0, n)
	for i := 0; list != ""; i++ {
		el := list
		if j := strings.IndexByte(list, '/'); j >= 0 {
			el, list = list[:j], list[j+1:]
			if list == "" {
				return nil, fmt.Errorf("%w: element %d: empty", ErrWrongChannel, i+1)
			}
		} else {
			list = ""
		}
		ch, err := s.parseChannel(el, trusted)
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		out = append(out, ch)
	}
	return out, nil
}

func (s *Signer) parseChannel(el string, trusted bool) (Channel, error) {
	value, sig, signed := strings.Cut(el, ".")
	id, pub, pair := strings.Cut(value, ":")
	if !isHex32(id) || (pair && !isHex32(pub)) {
		return Channel{}, fmt.Errorf("%w: malformed", ErrWrongChannel)
	}
	if signed && len(sig) != s.hexLen {
		return Channel{}, fmt.Errorf("%w: signature length", ErrWrongChannel)
	}
	switch {
	case pair:
		// The priv:pub form always needs its signature (it grants the
		// public alias).
		if !signed || !s.Verify(value, sig) {
			return Channel{}, ErrBadSignature
		}
		return Channel{ID: id, PublicID: pub}, nil
	case !signed:
		if s.HasKey() && !trusted {
			return Channel{}, fmt.Errorf("%w: signature required", ErrWrongChannel)
		}
		return Channel{ID: id}, nil
	case s.Verify(id, sig):
		return Channel{ID: id}, nil
	case s.Verify("public:"+id, sig):
		return Channel{PublicID: id, Public: true}, nil
	}
	return Channel{}, ErrBadSignature
}

// Derived channel ids: the config endpoint gives user u private and public
// ids that the server alone can map back to u, so a connection on them can
// also join the hub channel user:<u> (and a v5 userList can reach the public
// alias) without any stored state. The 16-byte id is AES(kind, u, tag) where
// tag is a MAC of (kind, u): a Bitrix-issued random id decodes with
// probability 2^-56.
const (
	kindPrivate byte = 'v'
	kindPublic  byte = 'p'
)

// DeriveID returns the 32-hex id of kind (kindPrivate or kindPublic) for
// user u (> 0).
func (s *Signer) DeriveID(kind byte, u uint64) string {
	var blk [16]byte
	blk[0] = kind
	binary.BigEndian.PutUint64(blk[1:9], u)
	copy(blk[9:], s.Raw(blk[:9])[:7])
	s.ids.Encrypt(blk[:], blk[:])
	return hex.EncodeToString(blk[:])
}

// DerivedUser returns the user whose derived id of kind id is, if it is
// one.
func (s *Signer) DerivedUser(kind byte, id string) (uint64, bool) {
	var blk [16]byte
	if len(id) != 32 {
		return 0, false
	}
	if _, err := hex.Decode(blk[:], []byte(id)); err != nil {
		return 0, false
	}
	s.ids.Decrypt(blk[:], blk[:])
	if blk[0] != kind || !hmac.Equal(s.Raw(blk[:9])[:7], blk[9:]) {
		return 0, false
	}
	u := binary.BigEndian.Uint64(blk[1:9])
	return u, u > 0
}

// SharedID is the shared channel id that the config endpoint gives every
// user.
func (s *Signer) SharedID() string {
	return hex.EncodeToString(s.Raw([]byte("pushpull bitrix shared"))[:16])
}

// userChannel is the hub channel of user u.
func userChannel(u uint64) string { return userPrefix + strconv.FormatUint(u, 10) }
