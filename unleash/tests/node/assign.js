// Evaluates one flag for many user ids with the official Node SDK (npm `unleash-client`),
// on a flag snapshot, with no server: `node assign.js SNAPSHOT.json FLAG IDS.txt`.
// Prints one JSON line per id: {"id", "enabled", "variant", "payload"}.
'use strict';
const fs = require('fs');
const { Unleash, InMemStorageProvider } = require('unleash-client');

const [snapshotPath, flag, idsPath] = process.argv.slice(2);
const snapshot = JSON.parse(fs.readFileSync(snapshotPath, 'utf8'));
const ids = fs.readFileSync(idsPath, 'utf8').split('\n').filter((l) => l.length > 0);

const unleash = new Unleash({
    // Never reached: the bootstrap is the only state, and polling and metrics are off.
    url: 'http://127.0.0.1:9/api',
    appName: 'fresco',
    refreshInterval: 0,
    disableMetrics: true,
    disableAutoStart: false,
    bootstrap: { data: snapshot.features, segments: snapshot.segments },
    storageProvider: new InMemStorageProvider(),
});
unleash.on('error', () => {});
unleash.on('ready', () => {
    const out = [];
    for (const id of ids) {
        const context = { userId: id };
        const enabled = unleash.isEnabled(flag, context);
        const variant = unleash.getVariant(flag, context);
        const payload = variant.enabled && variant.payload ? variant.payload.value : null;
        out.push(JSON.stringify({ id, enabled, variant: variant.name, payload }));
    }
    unleash.destroy();
    // Exit only once the pipe has taken everything.
    process.stdout.write(out.join('\n') + '\n', () => process.exit(0));
});
