(function(){var a=document.getElementById("leave");if(a)a.addEventListener("click",function(e){e.preventDefault();window.location.replace(a.href);});})();
