// Package dadchub is the Hugging Face Hub side of a DADC loop shared by
// several servers: replicas that take flags and follow a published model,
// and one trainer that reads every replica's flags and publishes the models
// it promotes. The Hub connects them, so no server shares a file with
// another and nothing else coordinates them.
//
//   - Store is a dadc.ModelStore (and dadc.HistoryStore) backed by a Hub
//     model repo: Save publishes the weights, the card and the round history
//     in one commit (so a crash never leaves half a model), Latest reads the
//     card at the repo's head.
//   - Follower keeps a replica's loop serving the model the repo's head
//     holds: it checks the head at an interval (jittered), downloads a newly
//     published model, verifies it and swaps it in (dadc.Loop.Adopt).
//   - Reader reads a dataset repo's shards incrementally (only files whose
//     blob id changed, only rows not seen yet), with the validation records,
//     for a trainer's loop (dadc.Loop.Ingest).
//
// Files in the model repo:
//
//	model.safetensors   the weights (LFS)
//	advspace.json       the card: dadc.ModelCard plus the weights' SHA-256
//	history.json        the round history (dadc.History) as of the promotion
//	README.md           a human-readable model card
//
// All types are safe for concurrent use unless their documentation says
// otherwise.
package dadchub
