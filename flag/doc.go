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
//   - Func adapts a function; Hub (in hub.go) pushes a Dir to a Hub dataset in
//     batched commits.
//
// Inputs are turned into files by a Codec: GrayPNG for grayscale images,
// JSONCodec for anything JSON can represent, or your own.
//
// Every handler identifies samples by dadc.Sample.ID, which must be 1 to 64
// characters from [A-Za-z0-9_-] (it becomes a file name), and stores a given ID
// at most once. That idempotence is what turns the Outbox's at-least-once
// delivery into exactly-once storage.
//
// CheckImageFolder verifies a dataset folder (local, or downloaded from the Hub)
// against the rules of the Hugging Face ImageFolder loader.
//
// Unless a comment says otherwise, every exported method is safe for
// concurrent use.
package flag
