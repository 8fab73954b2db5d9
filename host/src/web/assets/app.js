// sandscribe's page script: upload with progress, live job events, playback, copy.
// Pages work without it where they can; text from plugins and users is only ever set
// with textContent, never as HTML.
(function () {
  "use strict";

  function formatBytes(n) {
    if (n < 1024) return n + " bytes";
    var units = ["KiB", "MiB", "GiB", "TiB"];
    var value = n / 1024;
    var unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return value.toFixed(1) + " " + units[unit];
  }

  function clock(ms) {
    var secs = Math.floor(ms / 1000);
    var h = Math.floor(secs / 3600);
    var m = Math.floor(secs / 60) % 60;
    var s = secs % 60;
    var pad = function (x) { return (x < 10 ? "0" : "") + x; };
    if (h > 0) return h + ":" + pad(m) + ":" + pad(s);
    return m + ":" + pad(s) + "." + Math.floor((ms % 1000) / 100);
  }

  // After an HTMX swap, move focus where it helps: the first field with an error, else
  // the new content's heading.
  document.addEventListener("htmx:afterSettle", function () {
    var focus = document.querySelector("[aria-invalid='true']") || document.querySelector("[data-autofocus]");
    if (focus) focus.focus();
  });

  // ---- Step 2: upload with drag and drop and a progress bar -------------------------
  function setupUpload() {
    var form = document.getElementById("upload-form");
    if (!form) return;
    var input = document.getElementById("file-input");
    var zone = document.getElementById("dropzone");
    var info = document.getElementById("file-info");
    var error = document.getElementById("upload-error");
    var wrap = document.getElementById("upload-progress-wrap");
    var bar = document.getElementById("upload-progress");
    var percent = document.getElementById("upload-percent");
    var button = document.getElementById("upload-button");
    var dropped = null;

    function chosen() { return dropped || (input.files && input.files[0]) || null; }
    function describe() {
      var file = chosen();
      info.textContent = file ? file.name + " — " + formatBytes(file.size) : "";
    }
    input.addEventListener("change", function () { dropped = null; error.textContent = ""; describe(); });
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (e) { e.preventDefault(); zone.classList.add("dragging"); });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function (e) { e.preventDefault(); zone.classList.remove("dragging"); });
    });
    zone.addEventListener("drop", function (e) {
      var files = e.dataTransfer && e.dataTransfer.files;
      if (!files || !files.length) return;
      dropped = files[0];
      error.textContent = "";
      describe();
    });

    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var file = chosen();
      if (!file) { error.textContent = "Choose a file first."; input.focus(); return; }
      var data = new FormData();
      data.append("file", file, file.name);
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", function (p) {
        if (!p.lengthComputable) return;
        var value = Math.round((p.loaded / p.total) * 100);
        bar.value = value;
        percent.textContent = value + "%";
      });
      xhr.upload.addEventListener("load", function () {
        percent.textContent = "Checking the audio…";
      });
      xhr.addEventListener("load", function () {
        var body = null;
        try { body = JSON.parse(xhr.responseText); } catch (err) { body = null; }
        if (xhr.status >= 200 && xhr.status < 300 && body && body.next) {
          window.location.assign(body.next);
          return;
        }
        wrap.hidden = true;
        button.disabled = false;
        error.textContent = (body && body.error) || ("The upload failed (HTTP " + xhr.status + ").");
        error.focus && error.setAttribute("tabindex", "-1");
        error.focus();
      });
      xhr.addEventListener("error", function () {
        wrap.hidden = true;
        button.disabled = false;
        error.textContent = "The upload was interrupted. Check the connection and try again.";
      });
      error.textContent = "";
      bar.value = 0;
      percent.textContent = "0%";
      wrap.hidden = false;
      button.disabled = true;
      xhr.send(data);
    });
  }

  // ---- Step 2: preview a media-folder file in the one player ------------------------
  function setupPreview() {
    var player = document.getElementById("preview-player");
    if (!player) return;
    var label = document.getElementById("preview-label");
    document.addEventListener("click", function (e) {
      var button = e.target.closest ? e.target.closest("[data-preview]") : null;
      if (!button) return;
      player.src = button.getAttribute("data-preview");
      label.textContent = "Playing: " + button.getAttribute("data-name");
      var played = player.play();
      if (played && played.catch) played.catch(function () {});
    });
  }

  // ---- Step 4: live progress over SSE ------------------------------------------------
  function setupProgress() {
    var job = document.getElementById("job");
    if (!job) return;
    var id = job.getAttribute("data-job-id");
    var list = document.getElementById("live-segments");
    var finished = job.getAttribute("data-finished") === "true";
    var bar = document.getElementById("job-progress");
    var percent = document.getElementById("job-percent");
    var stage = document.getElementById("job-stage");
    var queue = document.getElementById("job-queue");
    var elapsed = document.getElementById("job-elapsed");
    var connection = document.getElementById("job-connection");
    var cancelForm = document.getElementById("cancel-form");
    var since = Number(job.getAttribute("data-since")) || Date.now();
    var leaving = false;
    var timer = null;

    if (elapsed && !finished) {
      var tick = function () { elapsed.textContent = clock(Math.max(0, Date.now() - since)).replace(/\.\d$/, ""); };
      tick();
      timer = window.setInterval(tick, 1000);
    }
    if (cancelForm) {
      cancelForm.addEventListener("submit", function () {
        leaving = true;
        var button = document.getElementById("cancel-button");
        if (button) { button.disabled = true; button.textContent = "Cancelling…"; }
        if (stage) stage.textContent = "Cancelling…";
      });
    }

    var seen = {};
    function addSegment(index, segment) {
      if (seen[index]) return;
      seen[index] = true;
      var item = document.createElement("li");
      var time = document.createElement("span");
      time.className = "time";
      time.textContent = clock(segment.start_ms) + "–" + clock(segment.end_ms);
      var text = document.createElement("span");
      text.className = "text";
      text.textContent = " " + segment.text;
      item.appendChild(time);
      item.appendChild(text);
      list.appendChild(item);
    }

    var source = new EventSource("/api/jobs/" + encodeURIComponent(id) + "/events");
    function data(e) { try { return JSON.parse(e.data); } catch (err) { return {}; } }
    function end() {
      source.close();
      if (timer) window.clearInterval(timer);
    }
    source.addEventListener("open", function () { if (connection) connection.textContent = ""; });
    source.addEventListener("error", function () {
      if (source.readyState !== EventSource.CLOSED && connection && !leaving) {
        connection.textContent = "— connection lost, reconnecting…";
      }
    });
    source.addEventListener("status", function (e) {
      var d = data(e);
      job.setAttribute("data-status", d.status);
      if (d.status === "queued") {
        if (stage) stage.textContent = "Waiting in the queue";
        if (queue) queue.textContent = d.queue_position ? " — position " + d.queue_position + " in the queue" : "";
      } else if (d.status === "running") {
        if (queue) queue.textContent = "";
        if (stage && stage.textContent === "Waiting in the queue") stage.textContent = "starting";
      }
    });
    source.addEventListener("progress", function (e) {
      var d = data(e);
      var value = Math.round(Math.max(0, Math.min(1, d.fraction || 0)) * 100);
      if (bar) bar.value = value;
      if (percent) percent.textContent = value + "%";
      if (stage && d.stage && !leaving) stage.textContent = d.stage;
    });
    source.addEventListener("segment", function (e) {
      var d = data(e);
      if (d.segment) addSegment(d.index, d.segment);
    });
    source.addEventListener("done", function () {
      end();
      job.setAttribute("data-status", "completed");
      if (bar) bar.value = 100;
      if (percent) percent.textContent = "100%";
      if (stage) stage.textContent = "Done — opening the transcript…";
      window.location.assign("/results/" + encodeURIComponent(id));
    });
    ["failed", "cancelled", "timed_out"].forEach(function (name) {
      source.addEventListener(name, function () {
        end();
        job.setAttribute("data-status", name);
        // The server renders the outcome in words, with the way back.
        if (!leaving) window.location.reload();
      });
    });
    if (finished) end();
  }

  // ---- Step 5: play from a segment, copy the text ------------------------------------
  function setupResults() {
    var audio = document.getElementById("result-audio");
    var segments = Array.prototype.slice.call(document.querySelectorAll(".segment[data-start-ms]"));
    if (audio) {
      var words = Array.prototype.slice.call(document.querySelectorAll("#segments .word"));
      segments.forEach(function (button) {
        // A click on a word plays from that word; anywhere else, from the segment.
        button.addEventListener("click", function (event) {
          var word = event.target.closest ? event.target.closest(".word") : null;
          var from = word || button;
          audio.currentTime = Number(from.getAttribute("data-start-ms")) / 1000;
          var played = audio.play();
          if (played && played.catch) played.catch(function () {});
        });
      });
      var mark = function () {
        var now = audio.currentTime * 1000;
        var current = null;
        segments.forEach(function (button) {
          if (Number(button.getAttribute("data-start-ms")) <= now) current = button;
        });
        segments.forEach(function (button) { button.classList.toggle("playing", button === current); });
        // The word being spoken: the last one started, until it ends.
        var spoken = null;
        words.forEach(function (word) {
          if (Number(word.getAttribute("data-start-ms")) <= now) spoken = word;
        });
        if (spoken && Number(spoken.getAttribute("data-end-ms")) < now) spoken = null;
        words.forEach(function (word) {
          word.classList.toggle("speaking", word === spoken);
          if (word === spoken) word.setAttribute("aria-current", "true");
          else word.removeAttribute("aria-current");
        });
      };
      audio.addEventListener("timeupdate", mark);
      audio.addEventListener("seeked", mark);
    }
    var copy = document.getElementById("copy-button");
    if (copy) {
      var status = document.getElementById("copy-status");
      var text = document.getElementById("transcript-text");
      copy.addEventListener("click", function () {
        var value = text ? text.value : "";
        var done = function () { status.textContent = "Copied to the clipboard."; };
        var fallback = function () {
          var details = text.closest("details");
          if (details) details.open = true;
          text.select();
          var ok = false;
          try { ok = document.execCommand("copy"); } catch (err) { ok = false; }
          status.textContent = ok ? "Copied to the clipboard." : "Select the full text below and copy it.";
        };
        if (navigator.clipboard && navigator.clipboard.writeText) {
          navigator.clipboard.writeText(value).then(done, fallback);
        } else {
          fallback();
        }
      });
    }
  }

  function start() {
    setupUpload();
    setupPreview();
    setupProgress();
    setupResults();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
