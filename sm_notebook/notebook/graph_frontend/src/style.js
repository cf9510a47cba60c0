// Styles of the graph view; JupyterLab's theme variables keep it readable in light and dark themes.
export const STYLE = `
.smnb-graph { font-family: var(--jp-ui-font-family, sans-serif); font-size: 12px;
  color: var(--jp-ui-font-color1, #222); border: 1px solid var(--jp-border-color2, #ccc); }
.smnb-graph .gv-toolbar { display: flex; gap: 8px; align-items: center; padding: 4px 6px;
  border-bottom: 1px solid var(--jp-border-color2, #ccc); flex-wrap: wrap; }
.smnb-graph .gv-search { width: 220px; }
.smnb-graph .gv-status, .smnb-graph .gv-legend { color: var(--jp-ui-font-color2, #777); }
.smnb-graph .gv-main { display: flex; min-height: 200px; }
.smnb-graph .gv-canvas { flex: 1 1 auto; overflow: hidden; position: relative; cursor: grab; }
.smnb-graph .gv-details { flex: 0 0 320px; overflow: auto; padding: 6px 8px;
  border-left: 1px solid var(--jp-border-color2, #ccc); }
.smnb-graph .gv-details table { border-collapse: collapse; width: 100%; }
.smnb-graph .gv-details th { text-align: left; vertical-align: top; padding: 1px 6px 1px 0;
  font-weight: 600; white-space: nowrap; }
.smnb-graph .gv-details td { font-family: var(--jp-code-font-family, monospace); word-break: break-all; }
.smnb-graph .gv-details ol, .smnb-graph .gv-details ul { margin: 2px 0; padding-left: 22px;
  font-family: var(--jp-code-font-family, monospace); word-break: break-all; }
.smnb-graph .gv-matches li { cursor: pointer; }
.smnb-graph .gv-matches li:hover { text-decoration: underline; }
.smnb-graph .gv-details-title { font-weight: 700; margin-bottom: 4px; word-break: break-all; }
.smnb-graph .gv-section { margin-top: 8px; font-weight: 700; color: var(--jp-ui-font-color2, #666); }
.smnb-graph .gv-bad td { color: #d32f2f; font-weight: 700; }
.smnb-graph .gv-node { cursor: pointer; }
.smnb-graph .gv-node rect { fill: #e8eef8; stroke: #5f6b7a; stroke-width: 1; }
.smnb-graph .gv-kind-call rect { fill: #fff1d6; }
.smnb-graph .gv-kind-group rect { fill: #eef3e6; }
.smnb-graph .gv-kind-input rect, .smnb-graph .gv-kind-output rect { fill: #e3f2fd; }
.smnb-graph .gv-kind-variable rect { fill: #f3e8f7; }
.smnb-graph .gv-kind-const rect { fill: #f2f2f2; }
.smnb-graph .gv-unsupported rect { stroke: #d32f2f; stroke-width: 2.5; }
.smnb-graph .gv-contains-unsupported rect { stroke: #d32f2f; stroke-width: 2.5; stroke-dasharray: 6 3; }
.smnb-graph .gv-match rect { stroke: #f9a825; stroke-width: 3; }
.smnb-graph .gv-selected rect { stroke: #1565c0; stroke-width: 3; }
.smnb-graph .gv-title { text-anchor: middle; font: bold 11px var(--jp-code-font-family, monospace); fill: #1a1a1a; }
.smnb-graph .gv-subtitle { text-anchor: middle; font: 11px var(--jp-code-font-family, monospace); fill: #444; }
.smnb-graph .gv-toggle { font-size: 14px; fill: #1565c0; cursor: pointer; text-anchor: middle; }
.smnb-graph .gv-cluster rect { fill: rgba(127, 127, 127, 0.06); stroke: #8a96a3; stroke-dasharray: 3 2; }
.smnb-graph .gv-cluster-call > rect { fill: rgba(255, 183, 77, 0.08); stroke: #e0a040; }
.smnb-graph .gv-cluster-title { font: 11px var(--jp-code-font-family, monospace); fill: var(--jp-ui-font-color2, #555); text-anchor: start; }
.smnb-graph .gv-cluster-title.gv-toggle { fill: #1565c0; font-size: 11px; }
.smnb-graph .gv-edge { fill: none; stroke: #7a8794; stroke-width: 1.2; }
.smnb-graph .gv-control { stroke-dasharray: 4 3; }
.smnb-graph .gv-arrowhead { fill: #7a8794; }
.smnb-graph .gv-edge-label { font: 9px var(--jp-code-font-family, monospace); fill: var(--jp-ui-font-color2, #666); }
`;
