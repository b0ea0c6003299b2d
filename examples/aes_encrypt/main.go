// Command aes_encrypt is ONVM's aes_encrypt example NF (tag "aes_encrypt",
// ONVM-COMPAT.md §5.3): AES-256-CTR over the UDP payload with ONVM's fixed
// key and IV, then on to the service given with -d. aes_decrypt undoes it.
// The NF is in examples/internal/aesnf, shared with aes_decrypt.
//
//	aes_encrypt [EAL args] -- [ONVM args] -- -d <destination> [-p <print_delay>]
package main

import (
	"os"

	"github.com/reinforce-nfv/reinforce/examples/internal/aesnf"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
)

func main() {
	os.Exit(aesnf.Run(aesnf.Encrypt, os.Args[0], os.Args[1:], nfapp.Std()))
}
