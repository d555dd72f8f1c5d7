// In-browser prediction with onnxruntime-web (vendored): the served model, exported to ONNX by the server,
// for when the server can't be reached. The files are cached by the service worker after first use.
const stjLocal = (() => {
  let meta = null, session = null, loading = null;

  function load() {
    if (!loading) {
      loading = (async () => {
        let response = await fetch("/browser-model/meta.json");
        while (response.status === 503) {  // the server is exporting it: ask again when it says
          const seconds = Number(response.headers.get("Retry-After")) || 5;
          await new Promise((done) => setTimeout(done, seconds * 1000));
          response = await fetch("/browser-model/meta.json");
        }
        const body = await response.json();
        if (!response.ok) throw new Error(body.error.message);
        meta = body;
        ort.env.wasm.wasmPaths = "/static/vendor/onnxruntime-web/";
        ort.env.wasm.numThreads = 1;  // threads need cross-origin isolation, which would block the camera
        session = await ort.InferenceSession.create(meta.url, { executionProviders: ["wasm"] });
        return meta;
      })().catch((error) => { loading = null; throw error; });
    }
    return loading;
  }

  function pixels(source, size, resize) {
    // the model's input: RGB 0..255, size x size, made the way the server makes it
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = size;
    const g = canvas.getContext("2d");
    g.imageSmoothingEnabled = true; g.imageSmoothingQuality = "high";
    const w = source.naturalWidth || source.videoWidth || source.width;
    const h = source.naturalHeight || source.videoHeight || source.height;
    if (resize === "center_crop") {
      const side = Math.min(w, h) * 224 / 256;  // the shorter side scaled to 256/224 of the input
      g.drawImage(source, (w - side) / 2, (h - side) / 2, side, side, 0, 0, size, size);
    } else {
      g.drawImage(source, 0, 0, w, h, 0, 0, size, size);  // squashed, as STJ's models were trained
    }
    const rgba = g.getImageData(0, 0, size, size).data, x = new Float32Array(size * size * 3);
    for (let i = 0, j = 0; i < rgba.length; i += 4) { x[j++] = rgba[i]; x[j++] = rgba[i + 1]; x[j++] = rgba[i + 2]; }
    return new ort.Tensor("float32", x, [1, size, size, 3]);
  }

  async function classify(source, topK = 3) {
    await load();
    const output = await session.run({ [session.inputNames[0]]: pixels(source, meta.image_size, meta.resize) });
    const probs = Array.from(output[session.outputNames[0]].data);
    const ranked = probs.map((p, i) => ({ label: meta.class_names[i], probability: p }))
      .sort((a, b) => b.probability - a.probability).slice(0, topK);
    return {
      label: ranked[0].label, confidence: ranked[0].probability, top_k: ranked, probabilities: probs,
      model: { name: meta.name, version: meta.version },
    };
  }

  return { load, classify };
})();
