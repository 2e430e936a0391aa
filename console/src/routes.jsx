// SPDX-License-Identifier: Apache-2.0
// Every page, its hash path and the roles that see it in the navigation or may open it. The
// broker checks every call again: a role left out here is refused there too.
import { Account } from './pages/auth.jsx';
import { Queue, RequestForm, RequestList, RequestPage } from './pages/requests.jsx';
import { AllocationPage, Allocations, FindingPage, Findings, Security, SystemEdit, Systems } from './pages/dept.jsx';
import { Dashboard, Events, Hosts, JobPage, Jobs } from './pages/ops.jsx';
import { Accounts, Audit, DepartmentPage, Departments, Health, Notifications, Policies } from './pages/admin.jsx';
import { CostsPage, ServiceQualityPage } from './pages/money.jsx';
import { AssessmentPage, OperationsPage, PrintAssessment, PrintOperations, Reports } from './pages/reports.jsx';

const DEPT = 'department';
const REV = 'reviewer';
const CONS = 'consultant';
const VEND = 'vendor';
const AUD = 'auditor';
const ADM = 'admin';

export const routes = [
    { path: '/account', page: Account },
    { path: '/notifications', page: Notifications },
    { path: '/dashboard', page: Dashboard, roles: [REV] },
    { path: '/queue', page: Queue, roles: [REV, CONS, VEND, DEPT] },
    { path: '/requests', page: RequestList, roles: [DEPT, REV, CONS, VEND, AUD] },
    { path: '/requests/new', page: RequestForm, roles: [DEPT] },
    { path: '/requests/:id/edit', page: RequestForm, roles: [DEPT] },
    { path: '/requests/:id', page: RequestPage, roles: [DEPT, REV, CONS, VEND, AUD] },
    { path: '/trials', page: Queue, roles: [VEND] },
    { path: '/systems', page: Systems, roles: [DEPT, REV, VEND, AUD] },
    { path: '/systems/new', page: SystemEdit, roles: [DEPT, REV] },
    { path: '/systems/:id', page: SystemEdit, roles: [DEPT, REV, VEND, AUD] },
    { path: '/allocations', page: Allocations, roles: [DEPT, REV, VEND, AUD] },
    { path: '/allocations/:id', page: AllocationPage, roles: [DEPT, REV, VEND, AUD] },
    { path: '/findings', page: Findings, roles: [DEPT, REV, VEND, AUD] },
    { path: '/findings/:id', page: FindingPage, roles: [DEPT, REV, VEND, AUD] },
    { path: '/security', page: Security, roles: [DEPT, REV, VEND, AUD] },
    { path: '/hosts', page: Hosts, roles: [REV, VEND, AUD] },
    { path: '/jobs', page: Jobs, roles: [DEPT, REV, VEND, AUD] },
    { path: '/jobs/:id', page: JobPage, roles: [DEPT, REV, VEND, AUD] },
    { path: '/events', page: Events, roles: [REV, VEND, AUD] },
    { path: '/audit', page: Audit, roles: [REV, AUD] },
    { path: '/departments', page: Departments, roles: [ADM, REV, AUD] },
    { path: '/departments/:id', page: DepartmentPage, roles: [ADM, REV, AUD, DEPT] },
    { path: '/accounts', page: Accounts, roles: [ADM, REV, AUD] },
    { path: '/policies', page: Policies },
    { path: '/health', page: Health },
    { path: '/reports', page: Reports, roles: [DEPT, REV, VEND, AUD] },
    { path: '/reports/assessment', page: AssessmentPage, roles: [DEPT, REV, AUD] },
    { path: '/reports/operations', page: OperationsPage, roles: [DEPT, REV, VEND, AUD] },
    // The API's own scoping: costs for departments (their own), reviewers, auditors, the admin;
    // the vendor's scorecard for reviewers, auditors, the admin and the vendor.
    { path: '/reports/costs', page: CostsPage, roles: [DEPT, REV, AUD, ADM] },
    { path: '/reports/service-quality', page: ServiceQualityPage, roles: [REV, AUD, ADM, VEND] },
    { path: '/print/assessment', page: PrintAssessment, roles: [DEPT, REV, AUD] },
    { path: '/print/operations', page: PrintOperations, roles: [DEPT, REV, VEND, AUD] },
];
