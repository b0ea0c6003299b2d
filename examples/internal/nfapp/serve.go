package nfapp

import (
	"errors"
	"fmt"

	"github.com/reinforce-nfv/reinforce/nflib"
)

// ServeWith is Serve with ONVM's other callbacks (setup, user_actions,
// msg_handler): nflib.NF.RunWith.
func ServeWith(nf *nflib.NF, h nflib.Handler, cb nflib.Callbacks, w IO) int {
	s := startSignalStop(nf)
	err := nf.RunWith(h, cb)
	s.close()
	err = errors.Join(err, nf.Close())
	if err != nil {
		fmt.Fprintln(w.Stderr, err)
		return 1
	}
	return 0
}
