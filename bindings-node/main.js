'use strict'
// The package entry: the generated loader (index.js, from `napi build`; never edit it by
// hand) plus the names kept for one release after a rename, which a generated loader
// cannot declare. Plain assignments, so that an ES module import sees them as named
// exports (Node detects a CommonJS module's names statically).

module.exports = require('./index.js')

/** @deprecated use `Store` (the same class; the store is an SQLite database or Redis now, not one file) */
module.exports.FileStore = module.exports.Store
