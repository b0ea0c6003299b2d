//go:build race

package arbiter_test

const raceEnabled = true
