// Runs the official @huggingface/hub JavaScript client against a fake Hub
// (examples/fakehub) to show the fake is faithful enough for real clients.
//
//   go run ./examples/fakehub -addr 127.0.0.1:8787 -token hf_js -user alice \
//       -multipart-threshold 1048576 -chunk-size 1048576 &
//   cd hfhub/hubtest/testdata/jsclient && npm ci && \
//       HF_ENDPOINT=http://127.0.0.1:8787 HF_TOKEN=hf_js node check.mjs
//
// Exits non-zero on the first mismatch.
import {
  whoAmI, createRepo, repoExists, uploadFiles, commit, listFiles, downloadFile,
  fileDownloadInfo, pathsInfo, listCommits,
} from "@huggingface/hub";
import { createHash } from "node:crypto";
import assert from "node:assert/strict";

const hubUrl = process.env.HF_ENDPOINT;
const accessToken = process.env.HF_TOKEN;
if (!hubUrl || !accessToken) {
  console.error("set HF_ENDPOINT and HF_TOKEN (see the comment at the top of check.mjs)");
  process.exit(2);
}
const common = { hubUrl, accessToken };
const step = (msg) => console.log("ok -", msg);

const me = await whoAmI(common);
assert.equal(me.type, "user");
step(`whoAmI: ${me.name}`);

const name = `${me.name}/js-check-${Date.now()}`;
const repo = { type: "dataset", name };
assert.equal(await repoExists({ ...common, repo }), false);
await createRepo({ ...common, repo, private: true });
assert.equal(await repoExists({ ...common, repo }), true);
step(`createRepo + repoExists: ${name}`);

// A small PNG-named file (LFS in datasets), a JSONL (regular), a 3 MiB binary
// (multipart when fakehub runs with -multipart-threshold 1048576).
const png = new Uint8Array(300).map((_, i) => (i * 7) % 256);
const jsonl = new TextEncoder().encode('{"file_name": "a.png", "label": 3}\n');
const big = new Uint8Array(3 * 1024 * 1024 + 123).map((_, i) => (i * 31 + 7) % 251);
const sha256 = (b) => createHash("sha256").update(b).digest("hex");

await uploadFiles({
  ...common, repo, commitTitle: "Upload from huggingface.js",
  files: [
    { path: "data/s1/a.png", content: new Blob([png]) },
    { path: "data/s1/metadata.jsonl", content: new Blob([jsonl]) },
    { path: "weights/big.bin", content: new Blob([big]) },
  ],
});
step("uploadFiles (preupload, LFS batch basic + multipart, NDJSON commit)");

const files = [];
for await (const f of listFiles({ ...common, repo, recursive: true })) files.push(f);
const byPath = Object.fromEntries(files.map((f) => [f.path, f]));
assert.equal(byPath["data/s1/a.png"].lfs.oid, sha256(png));
assert.equal(byPath["weights/big.bin"].lfs.size, big.length);
assert.equal(byPath["data/s1/metadata.jsonl"].lfs, undefined);
assert.equal(byPath["data"].type, "directory");
step(`listFiles: ${files.length} entries, LFS where expected`);

for (const [path, want] of [["data/s1/a.png", png], ["data/s1/metadata.jsonl", jsonl], ["weights/big.bin", big]]) {
  const info = await fileDownloadInfo({ ...common, repo, path });
  assert.equal(info.size, want.length, `size of ${path}`);
  const blob = await downloadFile({ ...common, repo, path });
  const got = new Uint8Array(await blob.arrayBuffer());
  assert.equal(sha256(got), sha256(want), `content of ${path}`);
}
assert.equal(await fileDownloadInfo({ ...common, repo, path: "nope.txt" }), null);
step("fileDownloadInfo + downloadFile (regular, LFS redirect), missing file → null");

const info = await pathsInfo({ ...common, repo, paths: ["data/s1/a.png", "nope"], expand: true });
assert.equal(info.length, 1);
assert.equal(info[0].lastCommit.title, "Upload from huggingface.js");
step("pathsInfo with expand");

await commit({
  ...common, repo, title: "Delete and update",
  operations: [
    { operation: "delete", path: "weights/big.bin" },
    { operation: "addOrUpdate", path: "data/s1/metadata.jsonl", content: new Blob([jsonl, jsonl]) },
  ],
});
const after = [];
for await (const f of listFiles({ ...common, repo, recursive: true })) after.push(f.path);
assert.ok(!after.includes("weights/big.bin"));
step("commit with delete + update");

const pr = await commit({
  ...common, repo, title: "A pull request", isPullRequest: true,
  operations: [{ operation: "addOrUpdate", path: "pr.txt", content: new Blob(["from a PR"]) }],
});
assert.match(pr.pullRequestUrl, /\/discussions\/1$/);
const prBlob = await downloadFile({ ...common, repo, path: "pr.txt", revision: "refs/pr/1" });
assert.equal(await prBlob.text(), "from a PR");
step(`commit with isPullRequest → ${pr.pullRequestUrl}, readable at refs/pr/1`);

const titles = [];
for await (const c of listCommits({ ...common, repo })) titles.push(c.title);
assert.deepEqual(titles, ["Delete and update", "Upload from huggingface.js", "initial commit"]);
step("listCommits");

console.log("all checks passed");
