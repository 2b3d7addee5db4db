// advspace page: draw a digit, see the model's answer as you draw, flag the
// drawings that fool it. Every value that comes from the server is put into the
// page with textContent or element attributes, never parsed as HTML.
(function () {
  'use strict';

  var PREDICT_DEBOUNCE_MS = 250;
  var STATS_EVERY_MS = 4000;
  var GALLERY_SIZE = 12;

  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function pct(x) { return (x * 100).toFixed(1) + '%'; }

  var pad = $('pad');
  var ctx = pad.getContext('2d');
  var brush = $('brush');
  var strokes = [];        // [{size, pts: [[x, y], ...]}], for undo and redraw
  var current = null;      // the stroke being drawn
  var drawingVersion = 0;  // bumps on every change of the drawing
  var predictedVersion = -1;
  var prediction = null;   // last prediction for drawingVersion
  var predictTimer = null;
  var predictSeq = 0;
  var chosenDigit = null;
  var flaggedVersion = -1; // the drawing version already sent with Flag / Yes
  var busy = false;
  var lastStats = null;
  var lastGalleryCount = -1;

  // ---- drawing ----------------------------------------------------------
  function resetCanvas() {
    ctx.save();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, pad.width, pad.height);
    ctx.restore();
  }
  function strokeStyle(size) {
    ctx.strokeStyle = '#111111';
    ctx.fillStyle = '#111111';
    ctx.lineWidth = size;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
  }
  function drawDot(x, y, size) {
    strokeStyle(size);
    ctx.beginPath();
    ctx.arc(x, y, size / 2, 0, Math.PI * 2);
    ctx.fill();
  }
  function drawSegment(a, b, size) {
    strokeStyle(size);
    ctx.beginPath();
    ctx.moveTo(a[0], a[1]);
    ctx.lineTo(b[0], b[1]);
    ctx.stroke();
  }
  function redraw() {
    resetCanvas();
    strokes.forEach(function (s) {
      drawDot(s.pts[0][0], s.pts[0][1], s.size);
      for (var i = 1; i < s.pts.length; i++) { drawSegment(s.pts[i - 1], s.pts[i], s.size); }
    });
  }
  function point(ev) {
    var r = pad.getBoundingClientRect();
    return [(ev.clientX - r.left) * pad.width / r.width, (ev.clientY - r.top) * pad.height / r.height];
  }
  function changed() {
    drawingVersion++;
    $('undo').disabled = strokes.length === 0;
    $('clear').disabled = strokes.length === 0;
    updateAnswerControls();
  }

  pad.addEventListener('pointerdown', function (ev) {
    if (ev.button !== 0 && ev.pointerType === 'mouse') { return; }
    ev.preventDefault();
    try { pad.setPointerCapture(ev.pointerId); } catch (e) { /* not capturable: fine */ }
    var p = point(ev);
    current = { size: Number(brush.value), pts: [p] };
    strokes.push(current);
    drawDot(p[0], p[1], current.size);
    changed();
    schedulePredict();
  });
  pad.addEventListener('pointermove', function (ev) {
    if (!current) { return; }
    ev.preventDefault();
    var p = point(ev);
    var last = current.pts[current.pts.length - 1];
    if (Math.abs(p[0] - last[0]) + Math.abs(p[1] - last[1]) < 1) { return; }
    current.pts.push(p);
    drawSegment(last, p, current.size);
    changed();
    schedulePredict();
  });
  function endStroke(ev) {
    if (!current) { return; }
    if (ev) { ev.preventDefault(); }
    current = null;
    schedulePredict();
  }
  pad.addEventListener('pointerup', endStroke);
  pad.addEventListener('pointercancel', endStroke);
  pad.addEventListener('lostpointercapture', function () { endStroke(null); });

  brush.addEventListener('input', function () { $('brush-out').textContent = brush.value; });
  $('undo').addEventListener('click', function () {
    strokes.pop();
    redraw();
    changed();
    schedulePredict();
  });
  $('clear').addEventListener('click', function () {
    strokes = [];
    redraw();
    changed();
    showPrediction(null);
    setResult('', '');
  });

  // What is sent to the server: the drawing scaled down to 84x84 (3x the
  // model's 28x28). The server reduces it to 28x28 anyway (the digit's box
  // to 20 px), and preprocessing costs it in proportion to the pixels: a
  // 280x280 canvas would cost 9 times as much as this for the same input.
  var SEND_SIZE = 84;
  var sendCanvas = document.createElement('canvas');
  sendCanvas.width = SEND_SIZE;
  sendCanvas.height = SEND_SIZE;
  function snapshot() {
    var c = sendCanvas.getContext('2d');
    c.fillStyle = '#ffffff';
    c.fillRect(0, 0, SEND_SIZE, SEND_SIZE);
    c.imageSmoothingEnabled = true;
    c.imageSmoothingQuality = 'high';
    c.drawImage(pad, 0, 0, SEND_SIZE, SEND_SIZE);
    return sendCanvas;
  }

  // ---- prediction -------------------------------------------------------
  var bars = [];
  function makeBars(list, count) {
    var out = [];
    for (var d = 0; d < count; d++) {
      var li = el('li');
      li.appendChild(el('span', 'digit', d));
      var track = el('span', 'track');
      var fill = el('span', 'fill');
      track.appendChild(fill);
      li.appendChild(track);
      var num = el('span', 'num', '');
      li.appendChild(num);
      list.appendChild(li);
      out.push({ li: li, fill: fill, num: num });
    }
    return out;
  }
  bars = makeBars($('prob-bars'), 10);

  function showPrediction(p) {
    prediction = p;
    var img = $('pred-input');
    if (!p) {
      $('pred-label').textContent = '?';
      img.hidden = true;
      img.removeAttribute('src');
      bars.forEach(function (b) { b.fill.style.width = '0'; b.num.textContent = ''; b.li.classList.remove('top'); });
      $('pred-hint').textContent = 'Start drawing: the model answers as you draw.';
      updateAnswerControls();
      return;
    }
    $('pred-label').textContent = String(p.label);
    if (typeof p.input === 'string' && p.input.indexOf('data:image/png;base64,') === 0) {
      img.src = p.input;
      img.hidden = false;
    }
    bars.forEach(function (b, d) {
      var v = (p.probabilities && p.probabilities[d]) || 0;
      b.fill.style.width = (v * 100).toFixed(1) + '%';
      b.num.textContent = pct(v);
      b.li.classList.toggle('top', d === p.label);
    });
    $('pred-hint').textContent = 'Model ' + p.model_version + ' is ' + pct(p.probabilities[p.label]) + ' sure it is a ' + p.label + '.';
    updateAnswerControls();
  }

  function schedulePredict() {
    if (predictTimer) { clearTimeout(predictTimer); }
    predictTimer = setTimeout(predict, PREDICT_DEBOUNCE_MS);
  }

  function predict() {
    predictTimer = null;
    if (strokes.length === 0) { showPrediction(null); return; }
    var version = drawingVersion;
    var seq = ++predictSeq;
    snapshot().toBlob(function (blob) {
      if (!blob) { return; }
      fetch('api/predict', { method: 'POST', headers: { 'Content-Type': 'image/png' }, body: blob, credentials: 'same-origin' })
        .then(readJSON)
        .then(function (res) {
          if (seq !== predictSeq) { return; } // a newer request is on its way
          if (!res.ok) {
            showPrediction(null);
            $('pred-hint').textContent = res.body.error || ('prediction failed (' + res.status + ')');
            return;
          }
          predictedVersion = version;
          showPrediction(res.body);
        })
        .catch(function () {
          if (seq === predictSeq) { $('pred-hint').textContent = 'The server cannot be reached; retrying when you draw again.'; }
        });
    }, 'image/png');
  }

  function readJSON(resp) {
    return resp.text().then(function (t) {
      var body = {};
      try { body = t ? JSON.parse(t) : {}; } catch (e) { body = { error: 'unexpected answer from the server' }; }
      return { ok: resp.ok, status: resp.status, body: body, headers: resp.headers };
    });
  }

  // ---- answer: yes / digit picker / flag --------------------------------
  var digitButtons = [];
  (function buildDigits() {
    var row = $('digit-row');
    for (var d = 0; d < 10; d++) {
      var b = el('button', '', d);
      b.type = 'button';
      b.id = 'digit-' + d;
      b.setAttribute('aria-pressed', 'false');
      b.setAttribute('aria-label', 'The correct digit is ' + d);
      b.addEventListener('click', chooseDigit.bind(null, d));
      row.appendChild(b);
      digitButtons.push(b);
    }
  })();

  function chooseDigit(d) {
    chosenDigit = d;
    digitButtons.forEach(function (b, i) { b.setAttribute('aria-pressed', i === d ? 'true' : 'false'); });
    updateAnswerControls();
  }

  function readyToAnswer() {
    return !busy && strokes.length > 0 && prediction !== null && predictedVersion === drawingVersion && flaggedVersion !== drawingVersion;
  }
  function updateAnswerControls() {
    var ready = readyToAnswer();
    $('yes').disabled = !ready;
    $('digits').disabled = !ready;
    $('flag').disabled = !ready || chosenDigit === null;
    $('flag').textContent = chosenDigit === null ? 'Flag' : 'Flag as ' + chosenDigit;
  }

  document.addEventListener('keydown', function (ev) {
    if (ev.altKey || ev.ctrlKey || ev.metaKey) { return; }
    var t = ev.target;
    if (t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA')) { return; }
    if (/^[0-9]$/.test(ev.key) && !$('digits').disabled) { chooseDigit(Number(ev.key)); }
  });

  function setResult(text, kind) {
    var r = $('result');
    r.textContent = text;
    r.className = 'result' + (kind ? ' ' + kind : '');
  }

  function sendFlag(label) {
    if (!readyToAnswer()) { return; }
    busy = true;
    updateAnswerControls();
    var version = drawingVersion;
    setResult('Sending…', '');
    fetch('api/flag', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      credentials: 'same-origin',
      body: JSON.stringify({ image: snapshot().toDataURL('image/png'), label: label })
    }).then(readJSON).then(function (res) {
      busy = false;
      if (res.status === 429) {
        var wait = res.headers.get('Retry-After') || '1';
        setResult('Too many flags: wait ' + wait + ' s and try again.', 'error');
      } else if (!res.ok) {
        setResult(res.body.error || ('flag failed (' + res.status + ')'), 'error');
      } else {
        flaggedVersion = version;
        setResult(res.body.message, res.body.fooled === false ? 'right' : 'fooled');
        if (typeof res.body.count === 'number') { $('count').textContent = String(res.body.count); }
        chooseDigit(null);
        refreshStats();
      }
      updateAnswerControls();
    }).catch(function () {
      busy = false;
      setResult('The server cannot be reached: nothing was saved, try again.', 'error');
      updateAnswerControls();
    });
  }
  $('yes').addEventListener('click', function () { if (prediction) { sendFlag(prediction.label); } });
  $('flag').addEventListener('click', function () { if (chosenDigit !== null) { sendFlag(chosenDigit); } });

  // ---- stats, notices, dashboard ----------------------------------------
  var perLabel = makeBars($('per-label'), 10);

  function notice(text, good) {
    var n = $('notice');
    if (!text) { n.hidden = true; n.textContent = ''; return; }
    n.textContent = text;
    n.className = 'notice' + (good ? ' good' : '');
    n.hidden = false;
  }

  function lastFinishedRound(rounds) {
    for (var i = rounds.length - 1; i >= 0; i--) {
      if (rounds[i].ended_at) { return rounds[i]; }
    }
    return null;
  }

  function refreshStats() {
    return fetch('api/stats', { credentials: 'same-origin' }).then(readJSON).then(function (res) {
      if (!res.ok) { return; }
      var s = res.body;
      var prev = lastStats;
      lastStats = s;
      $('round').textContent = String(s.round);
      $('model-version').textContent = String(s.model_version);
      $('count').textContent = String(s.flagged_total);
      var rounds = s.rounds || [];
      if (s.retraining) {
        notice('A new model is being trained on the samples you flagged. Keep going: new flags count toward the next round.', false);
      } else if (prev && prev.retraining) {
        var done = lastFinishedRound(rounds);
        if (done && done.promoted) {
          notice('New model promoted (' + s.model_version + '): clean accuracy ' + pct(done.clean_accuracy || 0) +
            (done.adversarial_accuracy !== null && done.adversarial_accuracy !== undefined ? ', accuracy on held-out fooling samples ' + pct(done.adversarial_accuracy) : '') + '.', true);
        } else if (done) {
          notice('The retrained model did not pass the quality gate; the current model keeps serving.', false);
        }
      }
      var max = 1;
      (s.per_label || []).forEach(function (n) { if (n > max) { max = n; } });
      perLabel.forEach(function (b, d) {
        var n = (s.per_label && s.per_label[d]) || 0;
        b.fill.style.width = (100 * n / max).toFixed(1) + '%';
        b.num.textContent = String(n);
      });
      drawChart(rounds);
      if (s.flagged_total !== lastGalleryCount) {
        lastGalleryCount = s.flagged_total;
        refreshGallery();
      }
    }).catch(function () { /* polling retries */ });
  }

  var SVGNS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs) {
    var e = document.createElementNS(SVGNS, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    return e;
  }
  function drawChart(rounds) {
    var box = $('chart');
    while (box.firstChild) { box.removeChild(box.firstChild); }
    var W = 360, H = 180, L = 34, R = 10, T = 10, B = 26;
    var root = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': 'Error rate and accuracy per round' });
    var n = Math.max(rounds.length, 2);
    function x(i) { return L + (W - L - R) * i / (n - 1); }
    function y(v) { return T + (H - T - B) * (1 - v); }
    [0, 0.25, 0.5, 0.75, 1].forEach(function (v) {
      root.appendChild(svg('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), 'class': 'grid-line' }));
      var t = svg('text', { x: L - 4, y: y(v) + 4, 'text-anchor': 'end' });
      t.textContent = (v * 100) + '%';
      root.appendChild(t);
    });
    rounds.forEach(function (r, i) {
      var t = svg('text', { x: x(i), y: H - 8, 'text-anchor': 'middle' });
      t.textContent = 'r' + r.round;
      root.appendChild(t);
    });
    root.appendChild(svg('line', { x1: L, x2: L, y1: T, y2: H - B, 'class': 'axis' }));
    var lines = svg('g'), dots = svg('g');
    root.appendChild(lines);
    root.appendChild(dots);
    function series(key, cls) {
      var pts = [];
      rounds.forEach(function (r, i) {
        var v = r[key];
        // A round nobody has submitted to yet has no error rate.
        if (key === 'model_error_rate' && !(r.flags + r.attempts > 0)) { return; }
        if (typeof v === 'number' && isFinite(v)) {
          pts.push([x(i), y(Math.max(0, Math.min(1, v)))]);
          var title = svg('title');
          title.textContent = 'round ' + r.round + ': ' + pct(v);
          var dot = svg('circle', { cx: x(i), cy: y(Math.max(0, Math.min(1, v))), r: 3, 'class': 'dot-' + cls });
          dot.appendChild(title);
          dots.appendChild(dot);
        }
      });
      if (pts.length > 1) {
        lines.appendChild(svg('polyline', { points: pts.map(function (p) { return p.join(','); }).join(' '), 'class': cls }));
      }
    }
    series('model_error_rate', 'err');
    series('clean_accuracy', 'clean');
    series('adversarial_accuracy', 'adv');
    box.appendChild(root);
    $('chart-hint').textContent = rounds.length ? '' : 'No rounds yet.';
  }

  function refreshGallery() {
    fetch('api/samples?limit=' + GALLERY_SIZE, { credentials: 'same-origin' }).then(readJSON).then(function (res) {
      if (!res.ok) { return; }
      var list = $('gallery');
      while (list.firstChild) { list.removeChild(list.firstChild); }
      var samples = res.body.samples || [];
      samples.forEach(function (s) {
        var li = el('li');
        var img = el('img');
        if (typeof s.image === 'string' && s.image.indexOf('data:image/png;base64,') === 0) { img.src = s.image; }
        img.alt = 'A ' + s.label + ' the model read as ' + s.model_label;
        img.width = 72; img.height = 72;
        li.appendChild(img);
        var cap = el('span', '', 'is ' + s.label + ', model: ');
        cap.appendChild(el('span', 'wrong', s.model_label));
        li.appendChild(cap);
        li.appendChild(el('div', '', 'round ' + s.round));
        list.appendChild(li);
      });
      $('gallery-hint').hidden = samples.length > 0;
    }).catch(function () { /* next refresh retries */ });
  }

  // Server-Sent Events give instant retrain notices; polling is the fallback.
  function listen() {
    if (!window.EventSource) { return; }
    var es = new EventSource('api/events');
    es.onmessage = function (m) {
      var ev;
      try { ev = JSON.parse(m.data); } catch (e) { return; }
      if (ev.kind === 'retrain_started') {
        notice('A new model is being trained on the samples you flagged (round ' + ev.round + ').', false);
      } else if (ev.kind === 'model_promoted') {
        notice('New model promoted (' + (ev.candidate || ev.model_version) + '): clean accuracy ' + pct(ev.clean_accuracy || 0) +
          ', accuracy on held-out fooling samples ' + pct(ev.adversarial_accuracy || 0) + '.', true);
      } else if (ev.kind === 'model_rejected') {
        notice('The retrained model did not pass the quality gate (clean accuracy ' + pct(ev.clean_accuracy || 0) + '); the current model keeps serving.', false);
      } else if (ev.kind === 'retrain_failed') {
        notice('Retraining failed; the current model keeps serving.', false);
      }
      refreshStats();
    };
  }

  resetCanvas();
  updateAnswerControls();
  drawChart([]);
  refreshStats();
  setInterval(refreshStats, STATS_EVERY_MS);
  listen();
})();
