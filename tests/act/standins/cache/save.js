// Post step of the actions/cache stand-in (like the real action: after the job's steps, on success).
const { execFileSync } = require("child_process");
const path = require("path");

const env = { ...process.env, CACHE_PATHS: process.env.INPUT_PATH || "", CACHE_KEY: process.env.INPUT_KEY || "" };
execFileSync("python3", [path.join(process.env.STANDIN_DIR, "cache.py"), "save"], { env, stdio: "inherit" });
