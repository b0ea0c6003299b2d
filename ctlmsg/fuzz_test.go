package ctlmsg

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReadMsg feeds arbitrary bytes to ReadMsg. It must never panic, must fail
// only with io.EOF, an io.ErrUnexpectedEOF wrapper or a *FrameError, and what
// it accepts must re-encode to a frame that decodes to the same encoding.
func FuzzReadMsg(f *testing.F) {
	for _, m := range sampleMsgs() {
		var buf bytes.Buffer
		if err := WriteMsg(&buf, m); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1})
	f.Add(frame(TypeRegister, `{"service":1,"service":2}`))
	f.Add(frame(TypeResponse, `{"ok":true,"data":  [1, {"a":null}] }`))
	f.Add(frame(TypeRegisterReply, `{"rings":[{"role":"rx","index":4294967295}]}`))
	f.Add(frame(TypeError, "{\"text\":\"\xff\xfe\"}"))

	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ReadMsg(bytes.NewReader(data))
		if err != nil {
			var fe *FrameError
			if err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.As(err, &fe) {
				t.Fatalf("unexpected error kind %T: %v", err, err)
			}
			if m != nil {
				t.Fatalf("message %#v returned with error %v", m, err)
			}
			return
		}
		var first bytes.Buffer
		if err := WriteMsg(&first, m); err != nil {
			t.Fatalf("re-encode of an accepted %#v: %v", m, err)
		}
		m2, err := ReadMsg(bytes.NewReader(first.Bytes()))
		if err != nil {
			t.Fatalf("decode of a re-encoded frame: %v", err)
		}
		var second bytes.Buffer
		if err := WriteMsg(&second, m2); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first.Bytes(), second.Bytes()) {
			t.Fatalf("encoding not stable:\n%q\n%q", first.Bytes(), second.Bytes())
		}
	})
}
