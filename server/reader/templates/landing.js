(function(){
var HEX=/^[0-9a-f]{64}$/;
var m=/\/b\/([0-9a-f]{64})$/.exec(location.pathname);
var f={};location.hash.replace(/^#/,"").split("&").forEach(function(p){var i=p.indexOf("=");if(i>0)f[p.slice(0,i)]=p.slice(i+1);});
var box=document.getElementById("withjs");if(!m||!box)return;
var id=m[1],k=HEX.test(f.k||"")?f.k:"",own=box.getAttribute("data-key")||"";
var lang=/[?&]lang=(en|ru|uk|fa)(&|$)/.exec(location.search),q=lang?"?lang="+lang[1]:"";
function set(n,t){var e=document.getElementById(n);if(e)e.textContent=t;}
set("bid",id);set("lk",k||"-");
document.getElementById("open").href="/v/"+id+q;
document.getElementById(k?(k===own?"same":"other"):"nokey").hidden=false;
var list=document.getElementById("ml"),n=0;
(f.m||"").split(",").forEach(function(t){if(!t||n>=16)return;var u;try{u=decodeURIComponent(t);}catch(e){return;}
if(!/^https?:\/\//.test(u))u="https://"+u;var url;try{url=new URL(u);}catch(e){return;}
if(url.protocol!=="https:"&&url.protocol!=="http:")return;if(url.username||url.password||url.search||url.hash)return;
var base=url.origin+url.pathname.replace(/\/+$/,"");var li=document.createElement("li"),a=document.createElement("a");
a.href=base+"/b/"+id+location.hash;a.rel="noreferrer";a.textContent=url.host+url.pathname.replace(/\/+$/,"");
var b=document.createElement("bdi");b.dir="ltr";b.appendChild(a);li.appendChild(b);list.appendChild(li);n++;});
if(n)document.getElementById("mirrors").hidden=false;
Array.prototype.forEach.call(document.querySelectorAll(".langs a"),function(a){a.href=a.getAttribute("href")+location.hash;});
document.getElementById("nojs").hidden=true;box.hidden=false;
})();
