// Types of the package entry (main.js): the generated typings (index.d.ts) plus the names
// kept for one release after a rename.
import type { Store, StoreOptions } from './index.js'

export * from './index.js'

/** @deprecated use `Store`: the same class (the store is an SQLite database or Redis now, not one file). */
export declare const FileStore: typeof Store
/** @deprecated use `Store`: the same class (the store is an SQLite database or Redis now, not one file). */
export type FileStore = Store
/** @deprecated use `StoreOptions`. */
export type FileStoreOptions = StoreOptions
