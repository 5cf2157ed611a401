// Answers GET / with a greeting; listens on $PORT (default 8080).
const express = require("express");

const app = express();
const port = Number(process.env.PORT) || 8080;

app.get("/", (req, res) => {
  res.type("text/plain").send(`Hello from Node.js ${process.version} with Express\n`);
});

app.listen(port, () => {
  console.log(`listening on port ${port}`);
});
