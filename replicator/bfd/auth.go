package bfd

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/subtle"
	"errors"
)

// Keyed SHA1 and MD5 (RFC 5880 §6.7.3, §6.7.4): the digest is the hash of
// the whole packet with the key, zero-padded to the digest size, in place of
// the digest field. SHA1 is what the section specifies; its weakness as a
// general hash does not break this keyed use at heartbeat rates, and the
// replication stream itself is protected by HMAC-SHA256 (transport.go).

// ErrAuth is returned for a packet whose authentication fails.
var ErrAuth = errors.New("bfd authentication failed")

func digestField(b []byte, t AuthType) []byte {
	n, ok := authLen(t)
	if !ok || len(b) < minLen+n {
		return nil
	}
	return b[minLen+8 : minLen+n]
}

// keyedDigest returns the digest (its first len(field) bytes count) and
// leaves b as it was.
func keyedDigest(b []byte, t AuthType, key []byte) (sum [20]byte) {
	f := digestField(b, t)
	var saved [20]byte
	copy(saved[:], f)
	clear(f)
	copy(f, key)
	switch t {
	case AuthKeyedMD5, AuthMeticulousMD5:
		m := md5.Sum(b)
		copy(sum[:], m[:])
	default:
		sum = sha1.Sum(b)
	}
	copy(f, saved[:])
	return sum
}

// Sign writes the keyed digest of an encoded packet b (with an MD5 or SHA1
// section) into its digest field.
func Sign(b []byte, t AuthType, key []byte) {
	sum := keyedDigest(b, t, key)
	copy(digestField(b, t), sum[:])
}

// Verify checks an encoded packet's keyed digest (MD5 or SHA1 types) or
// password (simple password) against key, in constant time.
func Verify(b []byte, p *ControlPacket, key []byte) bool {
	if p.AuthType == AuthSimplePassword {
		return subtle.ConstantTimeCompare(p.AuthData, key) == 1
	}
	f := digestField(b, p.AuthType)
	if f == nil {
		return false
	}
	sum := keyedDigest(b, p.AuthType, key)
	return subtle.ConstantTimeCompare(f, sum[:len(f)]) == 1
}
