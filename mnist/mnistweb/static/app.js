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
  var lastFlag = null;     // {id, body} of this page's last stored flag, for Retract
  var pendingFlag = null;  // the flag body waiting for the person's confirmation
  var noticedRound = -1;   // the last round whose retrain decision was announced
  var valItem = null;      // the sample shown for validation
  var valLoaded = false;   // validation is on and the first drawing was asked for
  var UNSURE_GAP = 0.15;   // top two closer than this: the model is unsure

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
    $('after').hidden = true;
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
  $('again').addEventListener('click', function () {
    strokes = [];
    redraw();
    changed();
    showPrediction(null);
    setResult('', '');
    pad.scrollIntoView({ block: 'nearest' });
    pad.focus();
  });

  // What is sent to the server: the drawing scaled down to 84x84 (3x the
  // model's 28x28). The server reduces it to 28x28 anyway (the digit's box
  // to 20 px), and preprocessing costs it in proportion to the pixels: a
  // 280x280 canvas would cost 9 times as much as this for the same input.
  var SEND_SIZE = 84;
  var sendCanvas = document.createElement('canvas');
  sendCanvas.width = SEND_SIZE;
  sendCanvas.height = SEND_SIZE;
  // Read back on every prediction (greyPNG below): willReadFrequently keeps
  // it in memory rather than on the GPU.
  var sendContext = sendCanvas.getContext('2d', { willReadFrequently: true });
  function snapshot() {
    var c = sendContext;
    c.fillStyle = '#ffffff';
    c.fillRect(0, 0, SEND_SIZE, SEND_SIZE);
    c.imageSmoothingEnabled = true;
    c.imageSmoothingQuality = 'high';
    c.drawImage(pad, 0, 0, SEND_SIZE, SEND_SIZE);
    return sendCanvas;
  }

  // greyPNG is the snapshot as the PNG that predictions send: greyscale,
  // unfiltered and uncompressed (greypng.js), which the server decodes by
  // copying, where the canvas's own compressed RGBA PNG (toBlob) cost it
  // more to decode than the prediction itself. Its grey levels are the ones
  // the server would compute from that RGBA PNG, so the answer is the same.
  // Flags send toDataURL's PNG instead: it is stored with the sample, and
  // compressed it is 3 to 7 times smaller (2 KB or less against 7 KB).
  function greyPNG() {
    var px = sendContext.getImageData(0, 0, SEND_SIZE, SEND_SIZE);
    return window.advspaceGreyPNG.encode(px.data, SEND_SIZE, SEND_SIZE);
  }

  // ---- connection state -------------------------------------------------
  // Any failed request marks the page offline: a banner says so and the
  // results shown grey out until a request succeeds again.
  function online(ok) {
    $('offline').hidden = ok;
    document.body.classList.toggle('stale', !ok);
  }
  function api(path, opts) {
    opts = opts || {};
    opts.credentials = 'same-origin';
    return fetch(path, opts).then(function (resp) {
      online(true);
      return readJSON(resp);
    }, function (err) {
      online(false);
      throw err;
    });
  }
  function readJSON(resp) {
    return resp.text().then(function (t) {
      var body = {};
      try { body = t ? JSON.parse(t) : {}; } catch (e) { body = { error: 'unexpected answer from the server' }; }
      return { ok: resp.ok, status: resp.status, body: body, headers: resp.headers };
    });
  }

  // ---- prediction -------------------------------------------------------
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
  var bars = makeBars($('prob-bars'), 10);

  // topTwo returns the two most likely labels of p, most likely first.
  function topTwo(p) {
    var order = p.probabilities.map(function (v, d) { return d; });
    order.sort(function (a, b) { return p.probabilities[b] - p.probabilities[a]; });
    return order.slice(0, 2);
  }

  function showPrediction(p) {
    prediction = p;
    var img = $('pred-input');
    var big = $('pred-label');
    big.classList.remove('unsure');
    if (!p) {
      big.textContent = '?';
      img.hidden = true;
      img.removeAttribute('src');
      bars.forEach(function (b) { b.fill.style.width = '0'; b.num.textContent = ''; b.li.classList.remove('top'); });
      $('pred-hint').textContent = 'Start drawing: the model answers as you draw.';
      $('live').textContent = 'The model answers as you draw.';
      updateAnswerControls();
      return;
    }
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
    var two = topTwo(p), p1 = p.probabilities[two[0]], p2 = p.probabilities[two[1]];
    var text;
    if (p1 - p2 < UNSURE_GAP) {
      big.textContent = two[0] + '/' + two[1];
      big.classList.add('unsure');
      text = 'Unsure: ' + two[0] + ' (' + pct(p1) + ') or ' + two[1] + ' (' + pct(p2) + ').';
      $('pred-hint').textContent = 'Model ' + p.model_version + ' cannot decide: ' + pct(p1) + ' for ' + two[0] + ', ' + pct(p2) + ' for ' + two[1] + '. Its answer is ' + p.label + '.';
    } else {
      big.textContent = String(p.label);
      text = 'Model: ' + p.label + ' (' + pct(p1) + ' sure)';
      $('pred-hint').textContent = 'Model ' + p.model_version + ' is ' + pct(p1) + ' sure it is a ' + p.label + '.';
    }
    $('live').textContent = text;
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
    snapshot();
    api('api/predict', { method: 'POST', headers: { 'Content-Type': 'image/png' }, body: greyPNG() })
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
        if (seq === predictSeq) {
          $('pred-hint').textContent = 'The server cannot be reached; the answer above is from before. Draw again to retry.';
          $('live').textContent = 'Cannot reach the server.';
        }
      });
  }

  // ---- answer: yes / digit picker / flag --------------------------------
  function digitRow(row, prefix, label, onPick) {
    var out = [];
    for (var d = 0; d < 10; d++) {
      var b = el('button', '', d);
      b.type = 'button';
      b.id = prefix + d;
      b.setAttribute('aria-label', label + d);
      b.addEventListener('click', onPick.bind(null, d));
      row.appendChild(b);
      out.push(b);
    }
    return out;
  }
  var digitButtons = digitRow($('digit-row'), 'digit-', 'The correct digit is ', function (d) { chooseDigit(d); });
  digitButtons.forEach(function (b) { b.setAttribute('aria-pressed', 'false'); });

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
    if ($('confirm').open) { return; }
    if (/^[0-9]$/.test(ev.key) && !$('digits').disabled) { chooseDigit(Number(ev.key)); }
  });

  function setResult(text, kind, id) {
    var r = $(id || 'result');
    r.textContent = text;
    r.className = 'result' + (kind ? ' ' + kind : '');
  }

  function sendFlag(label) {
    if (!readyToAnswer()) { return; }
    var body = { image: snapshot().toDataURL('image/png'), label: label };
    // Ask first when the model is sure of another answer; the server asks
    // too (409) if the page did not, for instance after a new model.
    var sure = prediction.probabilities[prediction.label];
    if (lastStats && label !== prediction.label && num(lastStats.confirm_threshold) && sure >= lastStats.confirm_threshold) {
      askConfirmation(body, drawingVersion, { probability: sure, model_label: prediction.label });
      return;
    }
    postFlag(body, drawingVersion);
  }

  function postFlag(body, version) {
    busy = true;
    updateAnswerControls();
    setResult('Sending…', '');
    api('api/flag', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body)
    }).then(function (res) {
      busy = false;
      if (res.status === 409 && res.body.needs_confirmation) {
        askConfirmation(body, version, res.body);
      } else if (res.status === 429) {
        var wait = res.headers.get('Retry-After') || '1';
        setResult('Too many flags: wait ' + wait + ' s and try again.', 'error');
      } else if (!res.ok) {
        setResult(res.body.error || ('flag failed (' + res.status + ')'), 'error');
      } else {
        flaggedVersion = version;
        setResult(res.body.message, res.body.fooled === false ? 'right' : 'fooled');
        if (typeof res.body.count === 'number') { $('count').textContent = String(res.body.count); }
        lastFlag = res.body.id ? { id: res.body.id } : null;
        $('retract').hidden = !lastFlag;
        $('retract').disabled = false;
        $('after').hidden = false;
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

  // The model was very sure and the person says otherwise: ask before
  // storing (a slip, or a label that would teach the model something wrong).
  function askConfirmation(body, version, ans) {
    pendingFlag = { body: body, version: version };
    $('confirm-text').textContent = 'The model is ' + Math.floor(ans.probability * 100) + '% sure this is a ' +
      ans.model_label + '. Is it really a ' + body.label + '?';
    $('confirm-yes').textContent = 'Yes, it is a ' + body.label;
    setResult('Nothing saved yet: please confirm.', '');
    $('confirm').showModal();
  }
  $('confirm-yes').addEventListener('click', function () {
    $('confirm').close();
    var p = pendingFlag;
    pendingFlag = null;
    if (!p || p.version !== drawingVersion) { return; }
    var b = JSON.parse(JSON.stringify(p.body));
    b.confirm = true;
    postFlag(b, p.version);
  });
  $('confirm').addEventListener('close', function () {
    if (pendingFlag) {
      pendingFlag = null;
      setResult('Cancelled: nothing was saved. Pick the right digit, or draw another.', 'right');
    }
  });
  $('confirm-no').addEventListener('click', function () { $('confirm').close(); });

  $('yes').addEventListener('click', function () { if (prediction) { sendFlag(prediction.label); } });
  $('flag').addEventListener('click', function () { if (chosenDigit !== null) { sendFlag(chosenDigit); } });
  $('retract').addEventListener('click', function () {
    if (!lastFlag) { return; }
    $('retract').disabled = true;
    api('api/retract', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ id: lastFlag.id }) })
      .then(function (res) {
        if (res.ok) {
          setResult('Retracted: this drawing will never be trained on (the dataset keeps a record of the retraction).', 'right');
          $('retract').hidden = true;
          lastFlag = null;
          refreshStats();
          refreshGallery();
        } else {
          $('retract').disabled = false;
          setResult(res.body.error || ('retract failed (' + res.status + ')'), 'error');
        }
      }).catch(function () {
        $('retract').disabled = false;
        setResult('The server cannot be reached: nothing was retracted, try again.', 'error');
      });
  });

  // ---- validation of other people's drawings ----------------------------
  var valDigits = digitRow($('val-digit-row'), 'val-digit-', 'No, it is a ', function (d) { sendVerdict('incorrect', d); });
  function showValItem(item) {
    valItem = item;
    $('val-item').hidden = !item;
    if (!item) { return; }
    if (typeof item.image === 'string' && item.image.indexOf('data:image/png;base64,') === 0) { $('val-image').src = item.image; }
    $('val-question').textContent = 'Is this a ' + item.label + '?';
    $('val-yes').textContent = 'Yes, it is a ' + item.label;
    $('val-model').textContent = 'The person who drew it says ' + item.label + '; the model said ' + item.model_label +
      '. It trains only after ' + item.required + (item.required === 1 ? ' person agrees.' : ' people agree.');
    valDigits.forEach(function (b, d) { b.disabled = d === item.label; });
    setValButtons(false);
  }
  function setValButtons(disabled) {
    $('val-yes').disabled = disabled;
    $('val-flagged').disabled = disabled;
    $('val-digits').disabled = disabled;
  }
  function nextToValidate() {
    return api('api/validate/next', {}).then(function (res) {
      if (res.status === 204) {
        showValItem(null);
        $('val-hint').textContent = 'Nothing to check right now: come back after others have flagged drawings.';
      } else if (!res.ok) {
        showValItem(null);
        $('val-hint').textContent = res.body.error || ('cannot load a drawing to check (' + res.status + ')');
      } else {
        $('val-hint').textContent = '';
        showValItem(res.body);
      }
    }).catch(function () {
      $('val-hint').textContent = 'The server cannot be reached.';
    });
  }
  function sendVerdict(verdict, label) {
    if (!valItem) { return; }
    setValButtons(true);
    var body = { id: valItem.id, verdict: verdict };
    if (label !== undefined) { body.label = label; }
    api('api/validate', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })
      .then(function (res) {
        if (res.ok) {
          var st = res.body;
          var word = { verified: 'now verified: it will train', rejected: 'now rejected: it will never train', pending: 'still waiting for more checks' }[st.status] || st.status;
          setResult('Thanks! Checks so far: ' + st.correct + ' yes, ' + (st.incorrect + st.flagged) + ' no; ' + word + '.', 'fooled', 'val-result');
          refreshStats();
          refreshGallery();
        } else {
          setResult(res.body.error || ('check failed (' + res.status + ')'), 'error', 'val-result');
        }
        return nextToValidate();
      }).catch(function () {
        setValButtons(false);
        setResult('The server cannot be reached: your check was not saved, try again.', 'error', 'val-result');
      });
  }
  $('val-yes').addEventListener('click', function () { sendVerdict('correct'); });
  $('val-flagged').addEventListener('click', function () { sendVerdict('flagged'); });

  // ---- stats, notices, dashboard ----------------------------------------
  var perLabel = makeBars($('per-label'), 10);

  function notice(text, good) {
    var n = $('notice');
    if (!text) { n.hidden = true; n.textContent = ''; return; }
    n.textContent = text;
    n.className = 'notice' + (good ? ' good' : '');
    n.hidden = false;
  }

  function num(v) { return typeof v === 'number' && isFinite(v); }

  // decision explains a finished retrain with its numbers and its reason.
  function decision(r, drop) {
    var gate = num(r.baseline_clean_accuracy) ? r.baseline_clean_accuracy - drop : null;
    var clean = num(r.clean_accuracy) ? pct(r.clean_accuracy) : 'not measured';
    var vs = num(r.baseline_clean_accuracy) ? ' (the model before: ' + pct(r.baseline_clean_accuracy) + '; the gate asks at least ' + pct(gate) + ')' : '';
    var held = '';
    if (num(r.adversarial_accuracy)) {
      held = ' On the ' + r.held_out_samples + ' held-out drawings that fooled earlier models it gets ' + pct(r.adversarial_accuracy) +
        ' right' + (r.adversarial_accuracy === 0 ? ': it has not learnt those yet, which is normal after a few samples and says nothing about its clean accuracy.' : ' (each of them fooled the model it was drawn for).');
    }
    if (r.promoted) {
      return { good: true, text: 'Round ' + r.round + ': new model ' + r.candidate + ' promoted, trained on ' + r.train_samples +
        ' drawings. Clean accuracy ' + clean + vs + '.' + held };
    }
    if (num(r.clean_accuracy)) {
      return { good: false, text: 'Round ' + r.round + ': the retrained model was rejected: clean accuracy ' + clean + vs +
        '. The current model keeps serving.' + (r.error ? ' Reason: ' + r.error + '.' : '') };
    }
    return { good: false, text: 'Round ' + r.round + ': no new model: ' + (r.error || 'the retrain failed') + '. The current model keeps serving.' };
  }

  function announce(s) {
    var rounds = s.rounds || [];
    if (s.retraining) {
      notice('A new model is being trained on the checked drawings. Keep going: new flags count toward the next round.', false);
      return;
    }
    for (var i = rounds.length - 1; i >= 0; i--) {
      var r = rounds[i];
      if (!(r.promoted || r.error)) { continue; }
      if (r.round > noticedRound) {
        // The first look at a page announces only what happens from now on.
        if (lastStats !== null) {
          var d = decision(r, s.gate_max_accuracy_drop || 0);
          notice(d.text, d.good);
        }
        noticedRound = r.round;
      }
      return;
    }
  }

  function refreshStats() {
    return api('api/stats', {}).then(function (res) {
      if (!res.ok) { return; }
      var s = res.body;
      announce(s);
      lastStats = s;
      $('round').textContent = String(s.round);
      $('model-version').textContent = String(s.model_version);
      $('count').textContent = String(s.flagged_total);
      var v = s.validation;
      if (v) {
        $('mer').textContent = pct(v.total.model_error_rate);
        $('vmer').textContent = pct(v.total.verified_model_error_rate);
        if (v.session && v.session.submitted > 0) {
          $('mine').hidden = false;
          $('mine-text').textContent = v.session.fooled + ' of ' + v.session.submitted + ' fooled (' + pct(v.session.model_error_rate) +
            '), verified ' + pct(v.session.verified_model_error_rate) + '; ' + v.session.verified + ' verified, ' + v.session.pending + ' waiting, ' +
            v.session.not_fooled + ' rejected or retracted';
        }
      } else {
        $('mer').textContent = pct(s.model_error_rate);
        $('vmer').textContent = 'n/a';
      }
      var max = 1;
      (s.per_label || []).forEach(function (n) { if (n > max) { max = n; } });
      perLabel.forEach(function (b, d) {
        var n = (s.per_label && s.per_label[d]) || 0;
        b.fill.style.width = (100 * n / max).toFixed(1) + '%';
        b.num.textContent = String(n);
      });
      drawCharts(s);
      $('validate-panel').hidden = !v;
      if (v && !valLoaded) {
        valLoaded = true;
        nextToValidate();
      }
      if (s.flagged_total !== lastGalleryCount) {
        lastGalleryCount = s.flagged_total;
        refreshGallery();
        if (v && !valItem) { nextToValidate(); }
      }
    }).catch(function () { /* polling retries */ });
  }

  var SVGNS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs) {
    var e = document.createElementNS(SVGNS, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    return e;
  }
  function titled(e, text) {
    var t = svg('title');
    t.textContent = text;
    e.appendChild(t);
    return e;
  }

  // niceRange returns [lo, hi, step] around the values, with about 4 ticks.
  function niceRange(values, floor, ceil) {
    var lo = floor, hi = ceil;
    if (values.length) { lo = Math.min.apply(null, values); hi = Math.max.apply(null, values); }
    var span = Math.max(hi - lo, 0.004);
    var steps = [0.001, 0.002, 0.0025, 0.005, 0.01, 0.02, 0.025, 0.05, 0.1, 0.2, 0.25];
    var step = steps[steps.length - 1];
    for (var i = 0; i < steps.length; i++) { if (span / steps[i] <= 5) { step = steps[i]; break; } }
    lo = Math.max(floor, Math.floor((lo - step / 2) / step) * step);
    hi = Math.min(ceil, Math.ceil((hi + step / 2) / step) * step);
    return [lo, hi, step];
  }

  // chart draws an SVG with x = rounds and a y axis fitted to the values.
  function chart(box, rounds, values, floor, ceil, label, draw) {
    while (box.firstChild) { box.removeChild(box.firstChild); }
    var W = 360, H = 180, L = 44, R = 10, T = 10, B = 26;
    var root = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': label });
    var n = Math.max(rounds.length, 1);
    var rg = niceRange(values, floor, ceil);
    var digits = rg[2] < 0.01 ? 1 : 0;
    // Each round gets a slot; its marks sit in the middle, clear of the axis.
    function x(i) { return L + (W - L - R) * (i + 0.5) / n; }
    function y(v) { return T + (H - T - B) * (1 - (Math.max(rg[0], Math.min(rg[1], v)) - rg[0]) / (rg[1] - rg[0])); }
    for (var v = rg[0]; v <= rg[1] + 1e-9; v += rg[2]) {
      root.appendChild(svg('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), 'class': 'grid-line' }));
      var t = svg('text', { x: L - 4, y: y(v) + 4, 'text-anchor': 'end' });
      t.textContent = (v * 100).toFixed(digits) + '%';
      root.appendChild(t);
    }
    rounds.forEach(function (r, i) {
      var t = svg('text', { x: x(i), y: H - 8, 'text-anchor': 'middle' });
      t.textContent = 'r' + r.round;
      root.appendChild(t);
    });
    root.appendChild(svg('line', { x1: L, x2: L, y1: T, y2: H - B, 'class': 'axis' }));
    draw(root, x, y);
    box.appendChild(root);
  }

  function line(root, pts, cls) {
    if (pts.length > 1) {
      root.appendChild(svg('polyline', { points: pts.map(function (p) { return p.join(','); }).join(' '), 'class': cls }));
    }
  }

  function drawCharts(s) {
    var rounds = s.rounds || [];
    var drop = s.gate_max_accuracy_drop || 0;
    // Accuracy: the candidates (promoted filled, rejected hollow with a
    // cross), the gate threshold of each round and the baseline.
    var tried = rounds.filter(function (r) { return num(r.clean_accuracy); });
    var accValues = [];
    tried.forEach(function (r) {
      accValues.push(r.clean_accuracy);
      if (num(r.baseline_clean_accuracy)) { accValues.push(r.baseline_clean_accuracy, r.baseline_clean_accuracy - drop); }
    });
    chart($('chart-acc'), rounds, accValues, 0, 1, 'Clean accuracy of each retrained model, with the gate', function (root, x, y) {
      rounds.forEach(function (r, i) {
        if (num(r.baseline_clean_accuracy)) {
          var g = r.baseline_clean_accuracy - drop;
          root.appendChild(titled(svg('line', { x1: x(i) - 14, x2: x(i) + 14, y1: y(g), y2: y(g), 'class': 'gate' }), 'round ' + r.round + ': gate ' + pct(g)));
          root.appendChild(titled(svg('line', { x1: x(i) - 14, x2: x(i) + 14, y1: y(r.baseline_clean_accuracy), y2: y(r.baseline_clean_accuracy), 'class': 'base' }),
            'round ' + r.round + ': model before ' + pct(r.baseline_clean_accuracy)));
        }
        if (!num(r.clean_accuracy)) { return; }
        var cx = x(i), cy = y(r.clean_accuracy);
        var tip = 'round ' + r.round + ': ' + (r.promoted ? 'promoted' : 'rejected') + ', clean accuracy ' + pct(r.clean_accuracy);
        if (r.promoted) {
          root.appendChild(titled(svg('circle', { cx: cx, cy: cy, r: 5, 'class': 'promoted' }), tip));
        } else {
          var g2 = svg('g', { 'class': 'rejected' });
          g2.appendChild(svg('circle', { cx: cx, cy: cy, r: 5 }));
          g2.appendChild(svg('line', { x1: cx - 3.5, y1: cy - 3.5, x2: cx + 3.5, y2: cy + 3.5 }));
          g2.appendChild(svg('line', { x1: cx - 3.5, y1: cy + 3.5, x2: cx + 3.5, y2: cy - 3.5 }));
          root.appendChild(titled(g2, tip));
        }
      });
    });
    $('chart-acc-hint').textContent = tried.length ? '' : 'No retrained model yet.';

    // Error rates (raw and verified) and held-out accuracy, 0 to what is needed.
    var vr = (s.validation && s.validation.rounds) || [];
    var errValues = [];
    rounds.forEach(function (r, i) {
      if (r.flags + r.attempts > 0) { errValues.push(r.model_error_rate); }
      if (vr[i] && vr[i].submitted > 0) { errValues.push(vr[i].verified_model_error_rate); }
      if (num(r.adversarial_accuracy)) { errValues.push(r.adversarial_accuracy); }
    });
    // From 0 to what the figures need; 0-100% before there are any.
    if (errValues.length) { errValues.push(0); }
    chart($('chart'), rounds, errValues, 0, 1, 'Error rate, verified error rate and held-out accuracy per round', function (root, x, y) {
      function series(get, cls) {
        var pts = [];
        rounds.forEach(function (r, i) {
          var v = get(r, i);
          if (!num(v)) { return; }
          pts.push([x(i), y(v)]);
          root.appendChild(titled(svg('circle', { cx: x(i), cy: y(v), r: 3, 'class': 'dot-' + cls }), 'round ' + r.round + ': ' + pct(v)));
        });
        line(root, pts, cls);
      }
      // A round nobody has submitted to yet has no error rate.
      series(function (r) { return r.flags + r.attempts > 0 ? r.model_error_rate : null; }, 'err');
      series(function (r, i) { return vr[i] && vr[i].submitted > 0 ? vr[i].verified_model_error_rate : null; }, 'verr');
      series(function (r) { return r.adversarial_accuracy; }, 'adv');
    });
    $('chart-hint').textContent = rounds.length ? '' : 'No rounds yet.';
  }

  function refreshGallery() {
    api('api/samples?limit=' + GALLERY_SIZE, {}).then(function (res) {
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
        if (s.validation) { li.appendChild(el('div', 'status ' + s.validation, s.validation)); }
        list.appendChild(li);
      });
      $('gallery-hint').hidden = samples.length > 0;
    }).catch(function () { /* next refresh retries */ });
  }

  // Server-Sent Events trigger an instant refresh; polling is the fallback.
  // The banners come from the round history (refreshStats), which has the
  // numbers, so an event never overwrites a richer message with a poorer one.
  function listen() {
    if (!window.EventSource) { return; }
    var es = new EventSource('api/events');
    es.onmessage = function (m) {
      var ev;
      try { ev = JSON.parse(m.data); } catch (e) { return; }
      // Not on every flag: with many people that would be a stats request
      // per page per flag; the poll catches those up.
      if (ev.kind === 'retrain_started' || ev.kind === 'model_promoted' || ev.kind === 'model_rejected' || ev.kind === 'retrain_failed') {
        refreshStats();
      }
    };
  }

  resetCanvas();
  updateAnswerControls();
  drawCharts({ rounds: [] });
  refreshStats();
  setInterval(refreshStats, STATS_EVERY_MS);
  listen();
})();
