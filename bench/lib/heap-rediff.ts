import { aggregate, diffPerConnection } from './heap-snapshot.js'
const [dir, n] = [process.argv[2]!, Number(process.argv[3])]
const rows = diffPerConnection(await aggregate(`${dir}/before.heapsnapshot`, true), await aggregate(`${dir}/after.heapsnapshot`, true), n, 3)
for (const r of rows.slice(0, 120)) console.log(`${String(r.bytesPerConn).padStart(6)} B  ${String(r.perConn).padStart(6)}x  ${r.key}`)
