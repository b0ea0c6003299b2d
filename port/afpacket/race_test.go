//go:build race

package afpacket_test

const raceEnabled = true
