// Main step of the actions/cache stand-in: restore the key's folders (cache.py restore).
const { execFileSync } = require("child_process");
const path = require("path");

const env = { ...process.env, CACHE_PATHS: process.env.INPUT_PATH || "", CACHE_KEY: process.env.INPUT_KEY || "" };
execFileSync("python3", [path.join(process.env.STANDIN_DIR, "cache.py"), "restore"], { env, stdio: "inherit" });
