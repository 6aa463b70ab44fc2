// `npm run lint` checks every relative link and heading anchor in README.md, docs/ and bench/
// (remark-validate-links; links to other sites are not fetched: this check runs offline).
import remarkValidateLinks from 'remark-validate-links';

export default { plugins: [[remarkValidateLinks, { repository: false }]] };
