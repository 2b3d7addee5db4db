package flag

import "github.com/advspace/advspace/dadc"

// Func adapts a plain function to dadc.Flagger. It is dadc.FlaggerFunc under
// a shorter name; the function must honour the Flagger contract (durable
// before returning nil, idempotent by sample ID, safe for concurrent use).
type Func[In any] = dadc.FlaggerFunc[In]
