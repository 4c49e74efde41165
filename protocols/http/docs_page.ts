/** A self-contained API reference page: reads /openapi.json in the browser; no CDN needed. */
export function docsPage(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sluice API</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:980px;padding:1.5rem;color:#1b2430}
h1{margin:.2rem 0}.op{border:1px solid #d8dee6;border-radius:8px;margin:.6rem 0;padding:.6rem .9rem}
.m{display:inline-block;min-width:4.2rem;font-weight:700;text-transform:uppercase}.get{color:#0a7}.post{color:#06c}.delete{color:#c30}.patch{color:#a60}
code,pre{font:13px ui-monospace,monospace;background:#f4f6f8;border-radius:4px}pre{padding:.5rem;overflow:auto}
details summary{cursor:pointer}.lock{color:#777;font-size:12px;margin-left:.5rem}h2{margin-top:1.6rem;text-transform:capitalize}
</style></head><body>
<h1>Sluice API</h1><p id="desc">Loading <a href="/openapi.json">/openapi.json</a>…</p><div id="ops"></div>
<script>
fetch("/openapi.json").then(r=>r.json()).then(doc=>{
  document.getElementById("desc").innerHTML=doc.info.description.replace(/\`([^\`]+)\`/g,"<code>$1</code>")+
   ' Machine-readable: <a href="/openapi.json">/openapi.json</a>.';
  const byTag={};
  for(const [path,ops] of Object.entries(doc.paths))for(const [m,op] of Object.entries(ops)){
    (byTag[(op.tags||["other"])[0]]??=[]).push({path,m,op});}
  const esc=s=>String(s).replace(/[&<>]/g,c=>({"&":"&amp;","<":"&lt;",">":"&gt;"}[c]));
  const out=document.getElementById("ops");
  for(const [tag,list] of Object.entries(byTag)){
    out.insertAdjacentHTML("beforeend","<h2>"+esc(tag)+"</h2>");
    for(const {path,m,op} of list){
      const params=(op.parameters||[]).map(p=>"<code>"+esc(p.in+" "+p.name)+"</code>").join(" ");
      const body=op.requestBody?"<details><summary>Body</summary><pre>"+esc(JSON.stringify(op.requestBody.content["application/json"].schema,null,2))+"</pre></details>":"";
      const resp=Object.entries(op.responses||{}).map(([s,r])=>"<code>"+s+"</code> "+esc(r.description)).join(" · ");
      out.insertAdjacentHTML("beforeend",'<div class="op"><span class="m '+m+'">'+m+"</span> <code>"+esc(path)+"</code>"+
        ((op.security||[]).length?'<span class="lock">token</span>':"")+"<div>"+esc(op.summary||"")+
        (op.description?"<br><small>"+esc(op.description)+"</small>":"")+"</div>"+(params?"<div>Parameters: "+params+"</div>":"")+body+"<div>Answers: "+resp+"</div></div>");
    }
  }
});
</script></body></html>`;
}
