package ctlmsg

import (
	"path/filepath"
	"strconv"
)

// Limits fixed by OpenNetVM (ONVM-COMPAT.md §2.1). They live here because both
// ends of the control socket enforce them: nflib when it parses an ONVM command
// line, the manager's registry when it assigns an instance ID.
const (
	// MaxNFs bounds instance IDs: 0 is reserved, so IDs are 1..MaxNFs-1.
	// ONVM: MAX_NFS.
	MaxNFs = 128
	// MaxServices bounds service IDs: 0 is reserved, so IDs are
	// 1..MaxServices-1. ONVM: MAX_SERVICES.
	MaxServices = 32
	// MaxNFsPerService bounds the running instances of one service.
	// ONVM: MAX_NFS_PER_SERVICE.
	MaxNFsPerService = 32
	// TagSize is the size of ONVM's NF tag buffer including its NUL, so a tag
	// keeps at most TagSize-1 bytes when ONVM shows it. ONVM: TAG_SIZE.
	TagSize = 15
	// PktLimitMultiplier converts a packet limit given in millions (-l) into
	// packets. ONVM: PKT_TTL_MULTIPLIER.
	PktLimitMultiplier = 1_000_000
)

// Wire-format choices (our own; ONVM passes pointers through rings instead).
const (
	// MaxFrameBytes bounds a whole frame: the 4-byte length, the type byte and
	// the JSON body. Control messages are small; the bound keeps a corrupt or
	// hostile length from making the reader allocate gigabytes.
	MaxFrameBytes = 64 << 10
	// lenBytes is the size of the little-endian length prefix; the length
	// counts the type byte and the body, not itself.
	lenBytes = 4
	// maxLen is the largest length prefix a frame may carry.
	maxLen = MaxFrameBytes - lenBytes
)

// DefaultSocketPath is the control socket of the manager called name when its
// configuration names none: <xdgRuntimeDir>/reinforce/<name>.sock, or
// /tmp/reinforce-<uid>/<name>.sock when xdgRuntimeDir is "". The manager and
// nflib MUST agree on it, so both call this.
func DefaultSocketPath(name, xdgRuntimeDir string, uid int) string {
	if xdgRuntimeDir != "" {
		return filepath.Join(xdgRuntimeDir, "reinforce", name+".sock")
	}
	return filepath.Join("/tmp", "reinforce-"+strconv.Itoa(uid), name+".sock")
}
