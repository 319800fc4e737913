// Node-RED settings of the bench's peer (bench/peer, issue #9). Each instance gets its own userDir and
// port on the command line (--userDir, --port); the broker, client id and database come from the
// environment (PEER_MQTT_HOST, PEER_MQTT_PORT, PEER_CLIENT_ID, PEER_DATABASE_URL), read by flow.json.
module.exports = {
    flowFile: "flow.json",              // copied into the userDir by the bench
    flowFilePretty: true,
    credentialSecret: false,
    uiHost: "127.0.0.1",                // loopback only
    disableEditor: true,                // no browser editor: the flow is the committed flow.json
    httpNodeRoot: false,
    mqttReconnectTime: 1000,
    // The function node's `libs` (pg): taken from <userDir>/node_modules as listed in <userDir>/package.json,
    // which the bench links to the npm install of bench/peer/package.json; never installed at run time.
    functionExternalModules: true,
    externalModules: {modules: {allowInstall: false}, palette: {allowInstall: false}},
    functionTimeout: 0,
    telemetry: {enabled: false},        // no update check: loopback only
    diagnostics: {enabled: false},
    runtimeState: {enabled: false},
    logging: {console: {level: "info", metrics: false, audit: false}},
    editorTheme: {tours: false, palette: {catalogues: []}},
};
