// A QR code as an SVG element, drawn from uqr's module matrix (vendor/uqr.js, MIT). Loaded only
// when a user enrols an authenticator app, so the first load does not carry it.
import { encode } from './vendor/uqr.js';
import { h } from './dom.js';

export function qrSVG(text, label) {
  const { data, size } = encode(text, { ecc: 'M', border: 4 });
  let d = '';
  for (let y = 0; y < size; y += 1) {
    for (let x = 0; x < size; x += 1) {
      if (data[y][x]) d += `M${x} ${y}h1v1h-1z`;
    }
  }
  return h('svg:svg', {
    viewBox: `0 0 ${size} ${size}`, width: 200, height: 200, role: 'img', 'aria-label': label,
    'shape-rendering': 'crispEdges', class: 'qr-code', id: 'totp-qr',
  },
  h('svg:rect', { width: size, height: size, fill: '#fff' }),
  h('svg:path', { d, fill: '#000' }));
}
