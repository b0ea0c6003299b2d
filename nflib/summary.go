package nflib

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
)

// SetSummary turns ONVM's exit summary and <tag>_stats.csv off (or on);
// tests and tools that register many NFs turn it off.
func (nf *NF) SetSummary(on bool) { nf.summary = on }

// writeSummary prints ONVM's "NF Activity summary" to w and writes
// ./<tag>_stats.csv (onvm_nflib_stats_summary_output, ONVM-COMPAT.md §3.4).
// ONVM's quirks are kept so scripts that parse them still work: the header
// has 16 columns, "NF tx buffered" twice, while each row has 15 values.
func (nf *NF) writeSummary(w io.Writer) error {
	c := nf.ctr
	rx, rxDrop, tx, txDrop := c.RX.Load(), c.RXDrop.Load(), c.TX.Load(), c.TXDrop.Load()
	out, tonf, drop, next := c.ActOut.Load(), c.ActToNF.Load(), c.ActDrop.Load(), c.ActNext.Load()
	const buffered = 0 // packets are never held outside the pool's rings
	core := runtime.NumCPU() - 1
	fmt.Fprintf(w, "\n\nNF Activity summary\n-------------------\n")
	fmt.Fprintf(w, "NF tag: %s\nNF instance ID: %d\nNF service ID: %d\nNF assigned socket: %d\nNF assigned core: %d\n",
		nf.tag, nf.instance, nf.Args.Service, 0, core)
	fmt.Fprintf(w, "RX total: %d\nRX total dropped: %d\nTX total: %d\nTX total dropped: %d\n", rx, rxDrop, tx, txDrop)
	fmt.Fprintf(w, "NF sent out: %d\nNF sent to NF: %d\nNF dropped: %d\nNF next: %d\nNF tx buffered: %d\nNF tx returned: %d\n",
		out, tonf, drop, next, buffered, nf.returned)
	f, err := os.Create(nf.tag + "_stats.csv")
	if err != nil {
		return err
	}
	defer f.Close()
	io.WriteString(f, "NF tag, NF instance ID, NF service ID, NF assigned socket, NF assigned core, RX total,RX total dropped, TX total, TX total dropped, NF sent out, NF sent to NF,NF dropped, NF next, NF tx buffered, NF tx buffered, NF tx returned\n")
	row := []string{nf.tag, u(uint64(nf.instance)), u(uint64(nf.Args.Service)), "0", strconv.Itoa(core),
		u(rx), u(rxDrop), u(tx), u(txDrop), u(out), u(tonf), u(drop), u(next), u(buffered), u(nf.returned)}
	for i, v := range row {
		if i > 0 {
			io.WriteString(f, ", ")
		}
		io.WriteString(f, v)
	}
	io.WriteString(f, "\n")
	fmt.Fprintf(w, "CSV file written to %s directory\n", nf.tag)
	return f.Close()
}

func u(v uint64) string { return strconv.FormatUint(v, 10) }
