// Loader for the revtun-core Node-API addon. scripts/build-native.mjs compiles
// crates/revtun-napi and copies the library here under a name that says which platform it
// was built for, so a copy built elsewhere is never loaded by mistake.
'use strict';
const path = require('node:path');

module.exports = require(path.join(__dirname, `revtun-core.${process.platform}-${process.arch}.node`));
