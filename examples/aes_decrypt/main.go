// Command aes_decrypt is ONVM's aes_decrypt example NF (tag "aes_decrypt",
// ONVM-COMPAT.md §5.3): AES-256-CTR over the UDP payload with ONVM's fixed
// key and IV, then on to the service given with -d. It undoes aes_encrypt
// (counter mode is its own inverse). The NF is in examples/internal/aesnf,
// shared with aes_encrypt.
//
//	aes_decrypt [EAL args] -- [ONVM args] -- -d <destination> [-p <print_delay>]
package main

import (
	"os"

	"github.com/reinforce-nfv/reinforce/examples/internal/aesnf"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
)

func main() {
	os.Exit(aesnf.Run(aesnf.Decrypt, os.Args[0], os.Args[1:], nfapp.Std()))
}
