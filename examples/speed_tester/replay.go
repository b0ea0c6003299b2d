package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	"github.com/reinforce-nfv/reinforce/nflib"
	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/port/pcap"
	"github.com/reinforce-nfv/reinforce/shm"
)

// capture is the first -c frames of the -o file, read before registering
// so that a bad file is refused before the NF shows up in the manager.
type capture struct {
	path   string
	frames [][]byte
	hashes []uint32 // each frame's flow hash (ONVM: softrss of the 5-tuple)
}

// loadCapture reads up to count frames of the classic pcap or pcapng file
// at path.
func loadCapture(path string, count uint32) (*capture, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pcap replay: %w", err)
	}
	defer f.Close()
	r, err := pcap.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("pcap replay: %s: %w", path, err)
	}
	c := &capture{path: path}
	var h pkt.Headers
	for uint32(len(c.frames)) < count {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("pcap replay: %s: %w", path, err)
		}
		c.frames = append(c.frames, append([]byte(nil), rec.Data...))
		c.hashes = append(c.hashes, flowHash(&h, rec.Data))
	}
	return c, nil
}

// flowHash is the manager's symmetric 5-tuple hash of frame, 0 for a frame
// that is not IP.
func flowHash(h *pkt.Headers, frame []byte) uint32 {
	if h.Decode(frame) != nil {
		return 0
	}
	ft, ok := h.FiveTuple(frame)
	if !ok {
		return 0
	}
	return pkt.SymmetricHash(ft)
}

// replay injects the capture's frames toward -d with the speed tester bit,
// so they circulate like created packets (ONVM: nf_setup with -o). Frames
// larger than a slot's data room are skipped and counted as dropped (ONVM:
// tx_drop and act_drop). It returns how many it injected and how many of
// those a full ring dropped.
func replay(nf *nflib.NF, c *capture, cfg config, w nfapp.IO) (created, lost uint32) {
	fmt.Fprintf(w.Stdout, "Replaying %d packets of %s to send to %d\n", len(c.frames), c.path, cfg.dst)
	a := nflib.ToNF(cfg.dst)
	var skipped uint64
	var waited time.Duration
	for i := 0; i < len(c.frames); {
		fr := c.frames[i]
		p, ok := nf.NewPacket()
		if !ok {
			if waited >= allocPatience {
				fmt.Fprintln(w.Stdout, "Failed to allocate packets")
				break
			}
			time.Sleep(allocRetry)
			waited += allocRetry
			continue
		}
		waited = 0
		m, room := p.Meta(), p.Room()
		if int(m.DataOff) > len(room) || len(fr) > len(room)-int(m.DataOff) {
			nf.Inject(p, nflib.Drop) // frees it
			skipped++
			i++
			continue
		}
		copy(room[m.DataOff:], fr)
		m.Len = uint32(len(fr))
		m.Flags = speedBit
		m.FlowHash = c.hashes[i]
		m.MetaFlags |= shm.FlagHasHash
		m.Port = 0
		if !nf.Inject(p, a) {
			lost++
		}
		created++
		i++
	}
	if skipped > 0 {
		nf.Counters().TXDrop.Add(skipped)
		nf.Counters().ActDrop.Add(skipped)
		fmt.Fprintf(w.Stderr, "%d packets of %s are larger than a slot's %d bytes of data room: skipped\n",
			skipped, c.path, nf.Region().DataBytes())
	}
	return created, lost
}
