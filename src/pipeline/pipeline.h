// src/pipeline: everything around the deploy engine that a CI pipeline needs.
// The parts each have their own header, included here:
//   init         `meshdeploy init`: detect an app repository, write its config,
//                workflows and composite action
//   junit        `meshdeploy report junit`: JUnit XML to a step summary and
//                annotations
//   secret_scan  `meshdeploy scan secrets`: committed credentials, SARIF
#pragma once
