"use strict";
// The gallery's script: layout switch, filters, inline playback and side-by-side
// comparison. It reads the page's embedded JSON (#gallery-data) and builds elements with
// textContent only, never HTML from data. The page works without it (the default grid,
// posters linking their videos); `choose` is runner/gallery_layout.py's `choose`.
(() => {
  const data = JSON.parse(document.getElementById("gallery-data").textContent);
  const MISSING = data.missing;
  const MAX_PICKS = 4;
  const DRIFT = 0.25; // seconds a compared video may drift from the first before it is moved
  const $ = (id) => document.getElementById(id);
  const grid = $("grid");
  const controls = $("controls");
  const figures = new Map();
  for (const figure of grid.querySelectorAll("figure.item")) {
    figures.set(Number(figure.dataset.i), figure);
  }
  const initial = { rows: data.layout.rows || "auto", cols: data.layout.cols || "auto" };
  const state = {
    rows: initial.rows,
    cols: initial.cols,
    filters: { axis: new Map(), status: new Set(), badge: new Set() },
    picked: [],
  };

  const own = (object, key) => Object.prototype.hasOwnProperty.call(object, key);
  const el = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const labelOf = (item, axis) => {
    if (axis === null) return "";
    return own(item.v, axis) ? item.v[axis] : MISSING;
  };

  // ------------------------------------------------------------------ layout

  function choose(job, rowsWanted, colsWanted) {
    const varies = (axis) => axis !== "auto" && job.axes.includes(axis);
    const follows = (axis, taken) =>
      taken !== null && own(job.determines, taken) && job.determines[taken].includes(axis);
    const first = (rank, taken) => {
      for (const axis of rank) {
        if (taken.includes(axis) || taken.some((t) => follows(axis, t))) continue;
        return axis;
      }
      return null;
    };
    let row = varies(rowsWanted) ? rowsWanted : null;
    let col = varies(colsWanted) && colsWanted !== row ? colsWanted : null;
    if (col === null) col = first(job.col_rank, [row]);
    if (row === null) row = first(job.row_rank, [col]);
    const sections = job.col_rank.filter(
      (axis) => axis !== row && axis !== col && ![row, col].some((p) => follows(axis, p)),
    );
    return { row, col, sections };
  }

  function headed(className, axis, label) {
    const node = el("div", className);
    node.title = label;
    node.append(el("span", "axis", axis), " " + label);
    return node;
  }

  function build(rowsWanted, colsWanted) {
    const byJob = data.jobs.map(() => []);
    data.items.forEach((item, n) => byJob[item.j].push(n));
    const page = document.createDocumentFragment();
    data.jobs.forEach((job, j) => {
      const { row, col, sections } = choose(job, rowsWanted, colsWanted);
      const position = (axis, label) => job.values[axis].indexOf(label);
      const jobNode = el("section", "job");
      if (job.heading) jobNode.append(el("h2", null, job.heading));
      const groups = new Map();
      for (const n of byJob[j]) {
        const key = JSON.stringify(sections.map((axis) => labelOf(data.items[n], axis)));
        if (!groups.has(key)) groups.set(key, []);
        groups.get(key).push(n);
      }
      const ordered = [...groups].map(([key, members]) => {
        const fixed = JSON.parse(key);
        return { fixed, members, at: fixed.map((label, i) => position(sections[i], label)) };
      });
      ordered.sort((a, b) => {
        for (let i = 0; i < a.at.length; i++) if (a.at[i] !== b.at[i]) return a.at[i] - b.at[i];
        return 0;
      });
      for (const { fixed, members } of ordered) {
        jobNode.append(section(job, row, col, sections, fixed, members));
      }
      page.append(jobNode);
    });
    const empty = grid.querySelector("p.empty");
    grid.replaceChildren(page);
    if (empty) grid.append(empty);
  }

  // runner/gallery.py's section_classes
  const sectionClasses = (ncols, nrows) => {
    const width = ncols <= 6 ? `c-${ncols}` : "c-many";
    return ncols <= 3 && nrows > 1 ? `sect ${width} pack` : `sect ${width}`;
  };

  function section(job, row, col, sections, fixed, members) {
    const node = el("section");
    if (sections.length) {
      node.append(el("h3", null, sections.map((axis, i) => `${axis} = ${fixed[i]}`).join(" · ")));
    }
    const cells = new Map();
    const usedRows = new Set();
    const usedCols = new Set();
    for (const n of members) {
      const r = labelOf(data.items[n], row);
      const c = labelOf(data.items[n], col);
      usedRows.add(r);
      usedCols.add(c);
      const key = JSON.stringify([r, c]);
      if (!cells.has(key)) cells.set(key, []);
      cells.get(key).push(n);
    }
    const rows = row === null ? [""] : job.values[row].filter((v) => usedRows.has(v));
    const cols = col === null ? [""] : job.values[col].filter((v) => usedCols.has(v));
    node.className = sectionClasses(cols.length, rows.length);
    for (const r of rows) {
      const rowNode = el("div", "row");
      if (row !== null) rowNode.append(headed("rhead", row, r));
      const cellsNode = el("div", "cells");
      for (const c of cols) {
        const here = cells.get(JSON.stringify([r, c])) || [];
        const cell = el("div", here.length ? "cell" : "cell void");
        if (col !== null) cell.append(headed("clabel", col, c));
        for (const n of here) cell.append(figures.get(n));
        cellsNode.append(cell);
      }
      rowNode.append(cellsNode);
      node.append(rowNode);
    }
    return node;
  }

  // ----------------------------------------------------------------- filters

  const chipSets = []; // [{details, kind, axis, inputs: Map(value -> input)}]
  for (const details of controls.querySelectorAll("details.filter")) {
    const inputs = new Map();
    for (const input of details.querySelectorAll("input")) inputs.set(input.value, input);
    chipSets.push({ details, kind: details.dataset.kind, axis: details.dataset.axis, inputs });
  }

  function chosenSet(chips) {
    const filters = state.filters;
    if (chips.kind !== "axis") return filters[chips.kind];
    if (!filters.axis.has(chips.axis)) filters.axis.set(chips.axis, new Set());
    return filters.axis.get(chips.axis);
  }

  function filtering() {
    const f = state.filters;
    return f.status.size > 0 || f.badge.size > 0 || [...f.axis.values()].some((s) => s.size);
  }

  function visible(item) {
    for (const [axis, allowed] of state.filters.axis) {
      if (allowed.size && !allowed.has(labelOf(item, axis))) return false;
    }
    const { status, badge } = state.filters;
    if (status.size && !status.has(item.s)) return false;
    if (badge.size && !badge.has(item.b)) return false;
    return true;
  }

  function applyFilters() {
    const active = filtering();
    let shown = 0;
    data.items.forEach((item, n) => {
      const show = visible(item);
      figures.get(n).hidden = !show;
      if (show) shown += 1;
    });
    for (const selector of [".cell", ".row", ".sect", ".job"]) {
      for (const node of grid.querySelectorAll(selector)) {
        node.hidden = active && !node.querySelector("figure.item:not([hidden])");
      }
    }
    $("shown").textContent = active
      ? `showing ${shown} of ${data.items.length}`
      : `showing all ${data.items.length}`;
    for (const chips of chipSets) {
      const n = chosenSet(chips).size;
      chips.details.querySelector(".chosen").textContent = n ? `(${n})` : "";
      chips.details.classList.toggle("active", n > 0);
    }
  }

  // -------------------------------------------------------------- the address

  function saveHash() {
    const params = new URLSearchParams();
    if (state.rows !== initial.rows) params.set("rows", state.rows);
    if (state.cols !== initial.cols) params.set("cols", state.cols);
    for (const [axis, values] of state.filters.axis) {
      for (const value of values) params.append(`f.${axis}`, value);
    }
    for (const value of state.filters.status) params.append("status", value);
    for (const value of state.filters.badge) params.append("badge", value);
    const text = params.toString();
    history.replaceState(null, "", text ? `#${text}` : location.href.split("#")[0]);
  }

  function loadHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    const axes = new Set(["auto", ...data.jobs.flatMap((job) => job.axes)]);
    if (axes.has(params.get("rows"))) state.rows = params.get("rows");
    if (axes.has(params.get("cols"))) state.cols = params.get("cols");
    for (const chips of chipSets) {
      const key = chips.kind === "axis" ? `f.${chips.axis}` : chips.kind;
      const chosen = chosenSet(chips);
      for (const value of params.getAll(key)) {
        const input = chips.inputs.get(value);
        if (input) {
          input.checked = true;
          chosen.add(value);
        }
      }
    }
    $("rows").value = state.rows;
    $("cols").value = state.cols;
  }

  // ----------------------------------------------------------- inline playing

  function playInline(link) {
    const poster = link.querySelector("img.poster");
    const video = document.createElement("video");
    video.controls = true;
    video.playsInline = true;
    video.preload = "none";
    if (poster) {
      video.poster = poster.getAttribute("src");
      for (const size of ["width", "height"]) {
        if (poster.hasAttribute(size)) video.setAttribute(size, poster.getAttribute(size));
      }
    }
    video.src = link.getAttribute("href");
    link.replaceWith(video);
    video.play().catch(() => {}); // a refused autoplay leaves the controls to the user
  }

  // ------------------------------------------------------------------ compare

  function showPicks() {
    const n = state.picked.length;
    for (const box of grid.querySelectorAll(".pick input")) {
      box.checked = state.picked.includes(Number(box.value));
      box.disabled = !box.checked && n >= MAX_PICKS;
    }
    $("compare-open").disabled = n < 2;
    $("compare-open").textContent = n >= 2 ? `compare ${n}` : "compare";
    $("compare-clear").disabled = n === 0;
    $("picked").textContent =
      n === 0 ? "tick 2–4 videos" : n === 1 ? "1 ticked — tick one more" : `${n} ticked`;
  }

  const compare = {
    videos: [],
    playing: false,
    frame: 0,

    open() {
      const items = $("cmp-items");
      items.replaceChildren();
      this.videos = state.picked.map((n) => {
        const figure = figures.get(n);
        const item = data.items[n];
        const box = el("div", "cmp-item");
        box.dataset.i = String(n);
        const title = Object.entries(item.v).map(([axis, value]) => `${axis} ${value}`);
        box.append(el("h4", null, title.join(" · ") || figure.id.slice(2)));
        const input = figure.querySelector("a.input img");
        if (input) {
          const image = el("img", "cmp-input");
          image.src = input.getAttribute("src");
          image.alt = "input image";
          box.append(image);
        }
        const video = document.createElement("video");
        video.muted = true;
        video.playsInline = true;
        video.preload = "auto";
        const poster = figure.querySelector("img.poster");
        if (poster) video.poster = poster.getAttribute("src");
        video.src = figure.querySelector("a.video").getAttribute("href");
        video.addEventListener("loadedmetadata", () => this.showLength());
        video.addEventListener("click", () => this.toggle());
        box.append(video, el("p", null, figure.querySelector(".prompt").textContent));
        items.append(box);
        return video;
      });
      this.videos[0].addEventListener("ended", () => this.pause());
      $("compare").hidden = false;
      this.show();
    },

    close() {
      this.pause();
      for (const video of this.videos) {
        video.removeAttribute("src");
        video.load(); // let go of the file
      }
      this.videos = [];
      $("cmp-items").replaceChildren();
      $("compare").hidden = true;
    },

    length() {
      const lengths = this.videos.map((v) => v.duration).filter(Number.isFinite);
      return lengths.length ? Math.max(...lengths) : 0;
    },

    showLength() {
      $("cmp-seek").max = String(this.length());
    },

    show() {
      const t = this.videos.length ? this.videos[0].currentTime : 0;
      $("cmp-seek").value = String(t);
      $("cmp-time").textContent = `${t.toFixed(1)} s`;
      $("cmp-play").textContent = this.playing ? "pause" : "play";
    },

    align(tolerance) {
      const [lead, ...rest] = this.videos;
      for (const video of rest) {
        const end = Number.isFinite(video.duration) ? video.duration : Infinity;
        const target = Math.min(lead.currentTime, end);
        if (Math.abs(video.currentTime - target) > tolerance) video.currentTime = target;
      }
    },

    play() {
      if (!this.videos.length) return;
      if (this.videos[0].ended) this.seek(0);
      this.playing = true;
      this.align(0.05);
      for (const video of this.videos) video.play().catch(() => {});
      cancelAnimationFrame(this.frame);
      const step = () => {
        if (!this.playing) return;
        this.align(DRIFT);
        this.show();
        this.frame = requestAnimationFrame(step);
      };
      this.frame = requestAnimationFrame(step);
      this.show();
    },

    pause() {
      this.playing = false;
      cancelAnimationFrame(this.frame);
      for (const video of this.videos) video.pause();
      if (this.videos.length) this.align(0.01);
      this.show();
    },

    toggle() {
      if (this.playing) this.pause();
      else this.play();
    },

    seek(t) {
      for (const video of this.videos) {
        const end = Number.isFinite(video.duration) ? video.duration : t;
        video.currentTime = Math.min(t, end);
      }
      this.show();
    },
  };

  // ------------------------------------------------------------------- wiring

  controls.addEventListener("submit", (event) => event.preventDefault());
  for (const which of ["rows", "cols"]) {
    $(which).addEventListener("change", () => {
      state[which] = $(which).value;
      build(state.rows, state.cols);
      applyFilters();
      showPicks();
      saveHash();
    });
  }
  for (const chips of chipSets) {
    chips.details.addEventListener("change", (event) => {
      const chosen = chosenSet(chips);
      if (event.target.checked) chosen.add(event.target.value);
      else chosen.delete(event.target.value);
      applyFilters();
      saveHash();
    });
  }
  $("show-all").addEventListener("click", () => {
    for (const chips of chipSets) {
      chosenSet(chips).clear();
      for (const input of chips.inputs.values()) input.checked = false;
    }
    applyFilters();
    saveHash();
  });
  grid.addEventListener("click", (event) => {
    const link = event.target.closest("a.play");
    if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    playInline(link);
  });
  grid.addEventListener("change", (event) => {
    const box = event.target.closest(".pick input");
    if (!box) return;
    const n = Number(box.value);
    if (box.checked && state.picked.length < MAX_PICKS) state.picked.push(n);
    else state.picked = state.picked.filter((m) => m !== n);
    showPicks();
  });
  $("compare-open").addEventListener("click", () => compare.open());
  $("compare-clear").addEventListener("click", () => {
    state.picked = [];
    showPicks();
  });
  $("cmp-close").addEventListener("click", () => compare.close());
  $("cmp-play").addEventListener("click", () => compare.toggle());
  $("cmp-seek").addEventListener("input", () => compare.seek(Number($("cmp-seek").value)));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !$("compare").hidden) compare.close();
  });

  loadHash();
  if (state.rows !== initial.rows || state.cols !== initial.cols) build(state.rows, state.cols);
  controls.hidden = false;
  // As served, nothing is filtered or picked: touch a thousand items only when needed.
  if (filtering()) applyFilters();
  else $("shown").textContent = `showing all ${data.items.length}`;
  performance.mark("gallery-ready");
})();
