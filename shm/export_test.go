package shm

// Hooks for the external tests (package shm_test), which cannot reach
// unexported state but need to scribble on it to play a misbehaving process.

func (r *Ring) ResetIndices(v uint32)    { r.resetIndices(v) }
func (r *Ring) ScribbleProd(v uint32)    { r.prod.Store(v) }
func (r *Ring) ScribbleCons(v uint32)    { r.cons.Store(v) }
func (r *Ring) Window() (uint32, uint32) { return r.window() }
func (r *Region) Mem() []byte            { return r.mem }

// SetSlotState overwrites slot i's state word, as a scribbling NF would.
func (r *Region) SetSlotState(i uint32, w uint64) { r.slotState(i).Store(w) }

// HeaderOffsets exposes header field offsets to the fuzz seeds.
const (
	HdrVersion     = hdrVersion
	HdrTotalBytes  = hdrTotalBytes
	HdrNumSections = hdrNumSections
	HdrSections    = hdrSections
	SectionBytes   = sectionBytes
	HdrRingCap     = hdrRingCap
	HdrSlotData    = hdrSlotData
)
