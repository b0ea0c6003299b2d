package replicator_test

import "math/rand/v2"

type testRand struct{ *rand.Rand }

func newRand(seed uint64) testRand {
	return testRand{rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Pick2 returns "p" or "s".
func (r testRand) Pick2() string {
	if r.IntN(2) == 0 {
		return "p"
	}
	return "s"
}
