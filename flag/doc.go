// Package flag provides flag handlers: implementations of dadc.Flagger that
// store the adversarial samples a dadc.Loop collects.
//
//   - Dir stores samples in a local folder laid out as a Hugging Face
//     ImageFolder dataset (README.md with configs YAML, data/<shard>/metadata.jsonl,
//     data/<shard>/<id>.png), durably (written and synced before Flag returns)
//     and recovers it after a crash. It also lists what it stored (dadc.SampleSource),
//     so a restarted Loop recovers its counts and training data.
//   - Log appends one JSONL line or CSV row per sample to a single file, like
//     Gradio's CSVLogger, with the input embedded as base64.
//   - Outbox is a durable local queue in front of a slow or unreliable handler
//     (a webhook, the Hub): Flag returns once the sample is on local disk, and a
//     background worker delivers it with exponential backoff, across restarts.
//   - FanOut sends every sample to several handlers at once.
//   - Hub pushes what a Dir stores to a Hugging Face Hub dataset in batched
//     commits.
//   - Func adapts a function.
//
// Inputs are turned into files by a Codec: GrayPNG() for grayscale images,
// JSONCodec for anything JSON can represent, or your own.
//
// Every stored record is a dadc.SampleMeta in its JSON form plus what the
// store needs: a metadata row adds file_name (MetadataRow), a log line adds
// the input in base64 (LogColumns), an Outbox queue record wraps it with the
// encoded input. Times are written in UTC.
//
// Every handler identifies samples by dadc.SampleMeta.ID, which must be 1 to 64
// characters from [A-Za-z0-9_-] (it becomes a file name), and stores a given ID
// at most once. That idempotence is what turns the Outbox's at-least-once
// delivery into exactly-once storage.
//
// # Closing
//
// Whoever constructs a handler closes it, after its last use: no handler
// closes what it was given. A FanOut does not close its handlers, an Outbox
// does not close the handler it delivers to, and a Hub does not close its
// Dir. A program therefore closes in the reverse order of construction, for
// instance Loop, then Hub, then Dir. Every Close is idempotent; Flag after
// Close returns ErrClosed. Close of an Outbox or a Hub returns a
// *PendingError when acknowledged samples were not sent yet (they wait on
// local disk), and nil otherwise.
//
// CheckImageFolder verifies a dataset folder (local, or downloaded from the Hub)
// against the rules of the Hugging Face ImageFolder loader.
//
// Unless a comment says otherwise, every exported method is safe for
// concurrent use.
package flag
