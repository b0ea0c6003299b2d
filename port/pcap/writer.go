package pcap

import (
	"fmt"
	"io"
)

// Writer writes a classic pcap capture: the file header, then one record
// per frame, buffered in memory and written to its destination in large
// chunks. After its buffer has grown to the largest burst it does not
// allocate. A Writer is for one goroutine.
type Writer struct {
	dst io.Writer
	h   FileHeader
	o   order
	buf []byte // file bytes not yet written to dst
	err error  // sticky write error
}

// NewWriter returns a Writer of captures with header h onto dst, the
// header already buffered: nothing reaches dst before the first flush. h
// is DefaultHeader() or a Reader's Header() (which the output then copies
// byte for byte); its version must be 2.x.
func NewWriter(dst io.Writer, h FileHeader) (*Writer, error) {
	if h.VersionMajor != 2 {
		return nil, fmt.Errorf("write pcap version %d.%d: %w", h.VersionMajor, h.VersionMinor, ErrUnsupported)
	}
	w := &Writer{dst: dst, h: h, o: order(h.BigEndian), buf: make([]byte, 0, writeBufBytes)}
	w.buf = h.appendTo(w.buf)
	return w, nil
}

// Header is the file header the Writer writes.
func (w *Writer) Header() FileHeader { return w.h }

// WriteRecord adds a record for frame data captured at ts (ns since the
// Unix epoch) that was origLen bytes on the wire (0: len(data)). Data
// beyond the header's SnapLen is cut, as a capture tool cuts it; the
// timestamp is rounded down to the header's resolution. The record is
// buffered, and written with what precedes it once flushBytes are
// buffered. It returns the error of a failed write, then keeps returning
// it.
func (w *Writer) WriteRecord(ts int64, origLen uint32, data []byte) error {
	if w.err != nil {
		return w.err
	}
	w.appendRecord(ts, origLen, data)
	if len(w.buf) >= flushBytes {
		return w.Flush()
	}
	return nil
}

// Flush writes what is buffered to the destination. It returns the error
// of a failed write, then keeps returning it.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) == 0 {
		return nil
	}
	n, err := w.dst.Write(w.buf)
	if err == nil && n < len(w.buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = fmt.Errorf("write: %w", err)
		return w.err
	}
	w.buf = w.buf[:0]
	return nil
}

// Buffered is how many bytes wait for Flush.
func (w *Writer) Buffered() int { return len(w.buf) }

// appendRecord buffers a record without flushing; the port's TX rolls
// back the records of frames it could not take by truncating to a length
// Buffered returned before them.
func (w *Writer) appendRecord(ts int64, origLen uint32, data []byte) {
	if origLen == 0 {
		origLen = uint32(len(data))
	}
	if w.h.SnapLen > 0 && uint64(len(data)) > uint64(w.h.SnapLen) {
		data = data[:w.h.SnapLen]
	}
	ts = max(ts, 0)
	frac := ts % 1e9
	if !w.h.Nanosecond {
		frac /= 1000
	}
	var h [recordHeaderBytes]byte
	w.o.put32(h[0:], uint32(ts/1e9))
	w.o.put32(h[4:], uint32(frac))
	w.o.put32(h[8:], uint32(len(data)))
	w.o.put32(h[12:], origLen)
	w.buf = append(w.buf, h[:]...)
	w.buf = append(w.buf, data...)
}

// truncate drops the records buffered after length n (a value of
// Buffered since the last flush).
func (w *Writer) truncate(n int) { w.buf = w.buf[:n] }
