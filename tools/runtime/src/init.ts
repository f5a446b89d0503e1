/** Entry of the init stage bundle (dist/init.js); see init-process.ts. */
import { initProcess } from './init-process.ts';

void initProcess();
