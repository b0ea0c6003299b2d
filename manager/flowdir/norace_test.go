//go:build !race

package flowdir

// raceEnabled scales stress tests down under the race detector (STYLE.md §9).
const raceEnabled = false
